//! [`KNOWN_KEYS`](super::KNOWN_KEYS) is exactly the set of keys the parser reads.

use serde::Deserialize;
use serde::de::{self, Visitor};

/// A deserializer that only records the field names (aliases included) a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only structs"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[test]
fn known_keys_are_the_parsers_fields() {
    let mut fields: &'static [&'static str] = &[];
    let _ = super::Raw::deserialize(FieldNames(&mut fields));
    let mut parser: Vec<&str> = fields.to_vec();
    let mut known: Vec<&str> = super::KNOWN_KEYS.to_vec();
    parser.sort_unstable();
    known.sort_unstable();
    assert!(
        parser.len() > 20,
        "the parser's fields were not recorded: {parser:?}"
    );
    assert_eq!(
        known, parser,
        "KNOWN_KEYS (left) must list every key Raw reads (right), aliases included"
    );
}
