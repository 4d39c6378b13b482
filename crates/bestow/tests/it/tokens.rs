//! Access tokens that must not verify: tampered, expired, signed by a foreign key, unsigned.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, token_of};

/// PKCS#8 form of an Ed25519 seed, as jsonwebtoken wants it.
fn encoding_key(seed: &[u8]) -> EncodingKey {
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(seed);
    EncodingKey::from_ed_der(&der)
}

/// The server's own signing key, read from its data dir: (kid, key).
fn server_key(app: &TestApp) -> (String, EncodingKey) {
    let text = std::fs::read_to_string(app.data_dir.path().join("signing-keys.json")).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    let key = &file["keys"][0];
    let seed = URL_SAFE_NO_PAD.decode(key["seed"].as_str().unwrap()).unwrap();
    (key["kid"].as_str().unwrap().to_owned(), encoding_key(&seed))
}

fn claims(sub: &str, exp_offset_secs: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": sub, "name": "admin", "roles": ["ADMIN"], "iss": "bestow-auth", "aud": "bestow",
        "iat": now, "exp": now + exp_offset_secs, "jti": "test",
    })
}

fn sign(kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[tokio::test]
async fn only_genuine_unexpired_tokens_verify() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let admin_id = &app.user_id(&admin).await;
    let (kid, key) = server_key(&app);

    // Control: a token we sign with the server's key is accepted, so the refusals below are
    // about the defect each one has.
    let genuine = sign(&kid, &key, &claims(admin_id, 60));
    assert_eq!(app.get("/api/v1/users", Some(&genuine)).await.status(), StatusCode::OK);

    let expired = sign(&kid, &key, &claims(admin_id, -120));
    let foreign = sign(&kid, &encoding_key(&[7u8; 32]), &claims(admin_id, 60));
    let mut parts: Vec<String> = admin.split('.').map(str::to_owned).collect();
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["roles"] = json!(["ADMIN", "AUDITOR"]);
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    let tampered = parts.join(".");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "kid": kid }).to_string()),
        URL_SAFE_NO_PAD.encode(claims(admin_id, 60).to_string())
    );

    for (name, token) in
        [("expired", expired), ("foreign key", foreign), ("tampered", tampered), ("alg none", unsigned)]
    {
        let response = app.get("/api/v1/users", Some(&token)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
    }
    let garbage = app.get("/api/v1/auth/me", Some("not-a-jwt")).await;
    assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn jwks_publishes_the_verifying_key() {
    let app = TestApp::spawn().await;
    let jwks: Value = app.get("/.well-known/jwks.json", None).await.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    let session = app.session("admin", crate::helpers::ADMIN_PASSWORD).await;
    let header = jsonwebtoken::decode_header(token_of(&session)).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    assert!(!jwks.to_string().contains("seed"), "only public material is published");
}
