//! JSON Schema counts `22.0` as an integer, and so do JavaScript clients that send
//! numbers as doubles; serde's `u64` does not. These accept a whole number written
//! either way for the API's `u64` request fields (`#[serde(deserialize_with = ...)]`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// 2^64 as a double: the first double past `u64::MAX`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

struct WholeNumber;

impl Visitor<'_> for WholeNumber {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number from 0 to 18446744073709551615")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
        Ok(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
        u64::try_from(value).map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<u64, E> {
        if value.fract() == 0.0 && (0.0..TWO_POW_64).contains(&value) {
            // In range and whole, so the conversion is exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(value as u64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(value), &self))
        }
    }
}

/// A `u64` field.
pub fn u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    deserializer.deserialize_any(WholeNumber)
}

/// An optional `u64` field (`null` or absent: `None`); pair with `#[serde(default)]`.
pub fn option_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct Optional;

    impl<'de> Visitor<'de> for Optional {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("null or a whole number from 0 to 18446744073709551615")
        }

        fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
            u64(d).map(Some)
        }
    }

    deserializer.deserialize_option(Optional)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::u64")]
        n: u64,
        #[serde(default, deserialize_with = "super::option_u64")]
        m: Option<u64>,
    }

    fn parse(json: &str) -> Option<(u64, Option<u64>)> {
        serde_json::from_str::<Body>(json).ok().map(|b| (b.n, b.m))
    }

    #[test]
    fn whole_numbers_in_either_spelling() {
        assert_eq!(parse(r#"{"n": 22}"#), Some((22, None)));
        assert_eq!(parse(r#"{"n": 22.0, "m": null}"#), Some((22, None)));
        assert_eq!(parse(r#"{"n": 0, "m": 5.0}"#), Some((0, Some(5))));
        assert_eq!(parse(r#"{"n": 1e3}"#), Some((1000, None)));
        assert_eq!(
            parse(r#"{"n": 18446744073709551615}"#),
            Some((u64::MAX, None))
        );
        // Large whole doubles parse exactly (serde_json's `float_roundtrip`): without it
        // this one read as ...471.2 and was refused (found by schemathesis).
        assert_eq!(
            parse(r#"{"n": 1995562114349471.0}"#),
            Some((1_995_562_114_349_471, None))
        );
    }

    #[test]
    fn everything_else_is_refused() {
        for json in [
            r#"{"n": 22.5}"#,
            r#"{"n": -1}"#,
            r#"{"n": -1.0}"#,
            r#"{"n": 18446744073709551616}"#,
            r#"{"n": 1.8446744073709552e19}"#,
            r#"{"n": "22"}"#,
            r#"{"n": null}"#,
            r#"{"n": 1, "m": "2"}"#,
            r#"{"n": 1, "m": 0.5}"#,
        ] {
            assert_eq!(parse(json), None, "{json}");
        }
    }
}
