//! The storage contract (`bestow-store-contract`) run against the MongoDB adapters, each check
//! in a fresh, uniquely named database on the test server (`BESTOW_TEST_MONGODB_URI`).

use crate::support;

use bestow_store_contract::contract_suite;
use support::{fresh_auth_store, fresh_event_store};

contract_suite!(auth: fresh_auth_store(), events: fresh_event_store());
