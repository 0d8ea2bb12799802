//! Typed values, encoded with postcard (the `serde` feature).
//!
//! postcard is compact and maintained (bincode, the usual choice, is not).
//! It is not self-describing: a value is read back correctly only as the
//! type it was written as. When a cached type changes shape between
//! deploys, put a version in the key (`v2:user:42`); until then
//! [`get_as`](Client::get_as) reports an old value as [`Error::Codec`],
//! while [`get_or_set_as`](Client::get_or_set_as) treats it as a miss and
//! overwrites it.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cache_aside::FetchOptions;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::set::{SetOptions, SetOutcome};

/// `value` as postcard bytes.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes> {
    postcard::to_allocvec(value)
        .map(Bytes::from)
        .map_err(|error| Error::Codec(format!("encoding: {error}")))
}

/// postcard bytes as a `T`; every byte must be used.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::Codec(format!(
            "decoding: {} bytes left over",
            rest.len()
        ))),
        Err(error) => Err(Error::Codec(format!("decoding: {error}"))),
    }
}

impl Client {
    /// The value under `key` decoded as a `T`, or `None` on a miss.
    /// Fails with [`Error::Codec`] if the stored bytes are not a `T`.
    ///
    /// ```no_run
    /// # async fn example(cache: tagcached_client::Client) -> tagcached_client::Result<()> {
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Profile { name: String, karma: u32 }
    ///
    /// let options = tagcached_client::SetOptions::new().tag("user:42");
    /// cache.set_as("user:42:profile", &Profile { name: "Ada".into(), karma: 7 }, &options).await?;
    /// let profile: Option<Profile> = cache.get_as("user:42:profile").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_as<T: DeserializeOwned>(&self, key: impl AsRef<[u8]>) -> Result<Option<T>> {
        match self.get(key).await? {
            Some(item) => decode(&item.value).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value`, encoded, under `key` as `options` say.
    pub async fn set_as<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<[u8]>,
        value: &T,
        options: &SetOptions,
    ) -> Result<SetOutcome> {
        self.set(key, encode(value)?, options).await
    }

    /// Typed [`get_or_set_with`](Client::get_or_set_with): the value under
    /// `key` as a `T`; on a miss, or a stored value that is not a `T`,
    /// `compute`s it and stores it fenced by the read (and under the
    /// read's lease, so concurrent misses compute it once).
    pub async fn get_or_set_as<T, K, G, F, Fut>(
        &self,
        key: K,
        tags: impl IntoIterator<Item = G>,
        ttl: Duration,
        compute: F,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        K: AsRef<[u8]>,
        G: AsRef<[u8]>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.try_get_or_set_as(key, tags, ttl, || async { Ok::<T, Error>(compute().await) })
            .await
    }

    /// As [`get_or_set_as`](Client::get_or_set_as) for a computation that
    /// can fail: its error is returned and nothing is stored.
    pub async fn try_get_or_set_as<T, K, G, F, Fut, E>(
        &self,
        key: K,
        tags: impl IntoIterator<Item = G>,
        ttl: Duration,
        compute: F,
    ) -> std::result::Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        K: AsRef<[u8]>,
        G: AsRef<[u8]>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        let options = FetchOptions::new().ttl(ttl).tags(tags);
        let (value, _) = self
            .cache_aside(
                key.as_ref(),
                &options,
                |bytes| decode(bytes).ok(),
                |_| compute(),
                |value| encode(value),
            )
            .await?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Profile {
        name: String,
        karma: u32,
    }

    #[test]
    fn a_value_round_trips() {
        let profile = Profile {
            name: "Ada".into(),
            karma: 7,
        };
        let bytes = encode(&profile).expect("encodes");
        assert_eq!(decode::<Profile>(&bytes).expect("decodes"), profile);
    }

    #[test]
    fn bytes_of_another_type_are_a_codec_error() {
        let bytes = encode(&(1u8, 2u8, 3u8)).expect("encodes");
        assert!(matches!(decode::<u8>(&bytes), Err(Error::Codec(_))));
        assert!(matches!(
            decode::<Profile>(b"\xff\xff"),
            Err(Error::Codec(_))
        ));
    }
}
