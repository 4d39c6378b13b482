//! How the stored document types (`UserDocument`, `EventDocument`…, one beside each adapter)
//! meet BSON: reading and writing them whole, and the field encodings they share through
//! `#[serde(with = …)]`: ids stored as ObjectIds where they are one, domain values stored as
//! the BSON of their JSON (integers int64, objects documents). Dates are `bson::DateTime`
//! fields, so they are BSON dates.

use bestow_kernel::store::StoreError;
use bson::Document;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::common::corrupt;

/// `value` as the document it is stored as.
pub(crate) fn to_document<T: Serialize>(value: &T, what: &str) -> Result<Document, StoreError> {
    bson::serialize_to_document(value).map_err(|e| corrupt(what, e))
}

/// A stored document read as its type `T`; one that does not fit is corrupt.
pub(crate) fn from_document<T: DeserializeOwned>(document: Document, what: &str) -> Result<T, StoreError> {
    bson::deserialize_from_document(document).map_err(|e| corrupt(what, e))
}

/// An id: an ObjectId when it is one, otherwise the string (see [`crate::common::id_bson`]).
pub(crate) mod object_id {
    use bson::Bson;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::common::{id_bson, id_text};

    pub(crate) fn serialize<T: AsRef<str> + ?Sized, S: Serializer>(id: &T, serializer: S) -> Result<S::Ok, S::Error> {
        id_bson(id.as_ref()).serialize(serializer)
    }

    /// Reads the id as text, then as the id type the field holds (`String` or a typed id).
    pub(crate) fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: TryFrom<String, Error: std::fmt::Display>,
        D: Deserializer<'de>,
    {
        let value = Bson::deserialize(deserializer)?;
        let text =
            id_text(&value).ok_or_else(|| D::Error::custom(format!("an id that is no ObjectId or string: {value}")))?;
        T::try_from(text).map_err(D::Error::custom)
    }
}

/// Ids, each as [`object_id`].
pub(crate) mod object_ids {
    use bson::Bson;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::common::{id_bson, id_text};

    pub(crate) fn serialize<S: Serializer>(ids: &[String], serializer: S) -> Result<S::Ok, S::Error> {
        ids.iter().map(|id| id_bson(id)).collect::<Vec<_>>().serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
        Vec::<Bson>::deserialize(deserializer)?
            .iter()
            .map(|value| {
                id_text(value).ok_or_else(|| D::Error::custom(format!("an id that is no ObjectId or string: {value}")))
            })
            .collect()
    }
}

/// A domain value stored as the BSON of its JSON ([`crate::common::json_to_bson`]): how
/// conditions, recurrences, reward details and audit snapshots have always been stored.
/// Null reads back as `None` for an `Option`; a missing field needs `#[serde(default)]`.
pub(crate) mod json {
    use bson::Bson;
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::common::{bson_to_json, json_to_bson};

    pub(crate) fn serialize<T: Serialize, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        let json = serde_json::to_value(value).map_err(S::Error::custom)?;
        json_to_bson(&json).serialize(serializer)
    }

    pub(crate) fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
        let value = Bson::deserialize(deserializer)?;
        serde_json::from_value(bson_to_json(&value)).map_err(D::Error::custom)
    }
}

/// A time kept as `DateTime<Utc>` by its type, stored as a BSON date.
pub(crate) mod datetime {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        bson::DateTime::from_chrono(*at).serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        bson::DateTime::deserialize(deserializer).map(bson::DateTime::to_chrono)
    }
}
