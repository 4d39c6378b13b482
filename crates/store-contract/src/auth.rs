//! Contract of [`AuthStore`].

use bestow_auth::domain::{User, UserChange, Username};
use bestow_auth::store::{AuthStore, RefreshToken, Rotation, UserFilter};
use bestow_kernel::audit::{AuditActor, AuditQuery};
use bestow_kernel::identity::Role;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use chrono::TimeDelta;

fn user(name: &str) -> User {
    User::new(&Username::parse(name, "/username").unwrap(), "$2b$04$hash".into(), vec![Role::User])
}

/// Usernames are unique ignoring letter case, enforced by the store.
pub async fn usernames_are_unique_ignoring_case(store: &impl AuthStore) {
    store.insert_user(&user("Alice"), None).await.unwrap();
    let clash = store.insert_user(&user("aLICE"), None).await;
    assert!(matches!(clash, Err(StoreError::Conflict(Conflict::Username))), "a second Alice must conflict: {clash:?}");
    let found = store.user_by_username("ALICE").await.unwrap().expect("found ignoring case");
    assert_eq!(found.username, "Alice", "the spelling is kept");
    assert_eq!(store.count_users().await.unwrap(), 1);
}

/// An audited change commits with its audit entry, and the entry sees before and after.
pub async fn audited_changes_commit_with_their_entry(store: &impl AuthStore) {
    let bob = user("bob");
    store.insert_user(&bob, None).await.unwrap();
    let actor = AuditActor::system("contract");
    let change = UserChange::Roles(vec![Role::Operator, Role::User]);
    let after = change.applied_to(&bob, bestow_kernel::time::now());
    let entry = actor.entry(
        "user.roles.set",
        ("user", bob.id.as_str()),
        Some(bob.audit_snapshot()),
        Some(after.audit_snapshot()),
    );
    store.replace_user(&bob, &after, Some(&entry)).await.unwrap();
    assert_eq!((bob.roles.clone(), after.roles.clone()), (vec![Role::User], vec![Role::User, Role::Operator]));
    let stored = store.user_by_id(&bob.id).await.unwrap().unwrap();
    assert_eq!(stored.roles, after.roles);
    let query = AuditQuery { target_id: Some(bob.id.to_string()), ..AuditQuery::default() };
    let Page { items: entries, total, .. } =
        store.list_audit(&query, PageRequest { page: 1, limit: 10 }).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(entries[0].after.as_ref().unwrap()["roles"], serde_json::json!(["USER", "OPERATOR"]));
    // The stored user is no longer `bob` as read: a second writer from that read loses.
    let stale = UserChange::Active(false).applied_to(&bob, bestow_kernel::time::now());
    let lost = store.replace_user(&bob, &stale, Some(&entry)).await;
    assert!(matches!(lost, Err(StoreError::Conflict(Conflict::Version))), "{lost:?}");
    assert!(store.user_by_id(&bob.id).await.unwrap().unwrap().is_active, "the lost change wrote nothing");
    let Page { total, .. } = store.list_audit(&query, PageRequest { page: 1, limit: 10 }).await.unwrap();
    assert_eq!(total, 1, "nor its audit entry");
}

/// A refresh token rotates once: the second rotation of the same token stores no new token and
/// revokes the family in the same transaction.
pub async fn refresh_rotation_is_compare_and_set(store: &impl AuthStore) {
    let carol = user("carol");
    store.insert_user(&carol, None).await.unwrap();
    let now = bestow_kernel::time::now();
    let token = |id: &str, digest: &str| RefreshToken {
        id: id.into(),
        family_id: "family".into(),
        user_id: carol.id.clone(),
        token_digest: digest.into(),
        issued_at: now,
        expires_at: now + TimeDelta::days(1),
        rotated_at: None,
        revoked_at: None,
    };
    store.insert_refresh_token(&token("t1", "d1")).await.unwrap();
    assert_eq!(
        store.rotate_refresh_token(&token("t1", "d1"), &token("t2", "d2"), now).await.unwrap(),
        Rotation::Rotated
    );
    assert!(store.refresh_token_by_digest("d2").await.unwrap().unwrap().revoked_at.is_none());
    let reuse = store.rotate_refresh_token(&token("t1", "d1"), &token("t3", "d3"), now).await.unwrap();
    assert_eq!(reuse, Rotation::AlreadyUsed);
    assert!(store.refresh_token_by_digest("d3").await.unwrap().is_none(), "a lost rotation stores no token");
    assert!(
        store.refresh_token_by_digest("d2").await.unwrap().unwrap().revoked_at.is_some(),
        "the reuse revoked the family with it"
    );
}

/// The sessions ended lately are the families with a token revoked since the given instant,
/// each once, newest first, up to the limit; a live family, an older revocation and another
/// user's are not among them.
pub async fn ended_sessions_are_the_families_revoked_lately(store: &impl AuthStore) {
    let dave = user("dave");
    let erin = user("erin");
    store.insert_user(&dave, None).await.unwrap();
    store.insert_user(&erin, None).await.unwrap();
    let now = bestow_kernel::time::now();
    let token = |id: &str, family: &str, owner: &User| RefreshToken {
        id: id.into(),
        family_id: family.into(),
        user_id: owner.id.clone(),
        token_digest: format!("digest-{id}"),
        issued_at: now,
        expires_at: now + TimeDelta::days(1),
        rotated_at: None,
        revoked_at: None,
    };
    for (id, family, owner) in [
        ("a1", "old", &dave),
        ("b1", "first", &dave),
        ("b2", "first", &dave),
        ("c1", "second", &dave),
        ("d1", "live", &dave),
        ("e1", "erins", &erin),
    ] {
        store.insert_refresh_token(&token(id, family, owner)).await.unwrap();
    }
    store.revoke_family("old", now - TimeDelta::hours(1)).await.unwrap();
    store.revoke_family("first", now - TimeDelta::seconds(2)).await.unwrap();
    store.revoke_family("second", now).await.unwrap();
    store.revoke_family("erins", now).await.unwrap();
    let since = now - TimeDelta::minutes(15);
    assert_eq!(store.ended_sessions(&dave.id, since, 10).await.unwrap(), ["second", "first"]);
    assert_eq!(store.ended_sessions(&dave.id, since, 1).await.unwrap(), ["second"], "the newest within the limit");
    assert_eq!(store.ended_sessions(&erin.id, since, 10).await.unwrap(), ["erins"]);
    store.revoke_user_tokens(&dave.id, now).await.unwrap();
    assert_eq!(store.ended_sessions(&dave.id, since, 10).await.unwrap(), ["live", "second", "first"]);
}

/// User lists filter by role, activity and a username prefix ignoring case, in creation order.
pub async fn user_lists_filter_by_role_activity_and_prefix(store: &impl AuthStore) {
    for (name, roles) in [("Alice", vec![Role::Admin]), ("alfred", vec![Role::User]), ("Bob", vec![Role::User])] {
        let user = User::new(&Username::parse(name, "/username").unwrap(), "hash".into(), roles);
        store.insert_user(&user, None).await.unwrap();
    }
    let page = PageRequest { page: 1, limit: 10 };
    let prefix = UserFilter { username_prefix: Some("AL".into()), ..Default::default() };
    let Page { items: users, total, .. } = store.list_users(&prefix, page).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(users.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), ["Alice", "alfred"], "creation order");
    let admins = UserFilter { role: Some(Role::Admin), ..Default::default() };
    assert_eq!(store.list_users(&admins, page).await.unwrap().total, 1);
    let bob = store.user_by_username("BOB").await.unwrap().unwrap();
    store
        .replace_user(&bob, &UserChange::Active(false).applied_to(&bob, bestow_kernel::time::now()), None)
        .await
        .unwrap();
    let inactive = UserFilter { is_active: Some(false), ..Default::default() };
    let Page { items: users, total, .. } = store.list_users(&inactive, page).await.unwrap();
    assert_eq!((users[0].username.as_str(), total), ("Bob", 1));
    assert_eq!(store.count_users().await.unwrap(), 3);
}
