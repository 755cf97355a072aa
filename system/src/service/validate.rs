//! Request parsing and validation: every malformed or invalid payload becomes a 400 with the
//! offending field named (seed 004, C.6).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::api::{Address, CreateOrderRequest, CreateShipmentRequest, FieldError};

/// Largest request body accepted (64 KiB): an order of 50 lines is a few KiB.
pub const REQUEST_BYTES_MAX: usize = 64 * 1024;
/// Lines per order.
pub const ORDER_ITEMS_MAX: usize = 50;
/// Units per line.
pub const ITEM_QUANTITY_MAX: u32 = 1_000;
/// Heaviest parcel the carrier takes, 70 kg.
pub const PARCEL_GRAMS_MAX: u32 = 70_000;
/// Longest free-text field.
pub const TEXT_LEN_MAX: usize = 200;

/// The characters Rust's `char::is_whitespace` (Unicode `White_Space`) counts, as ranges:
/// a free-text field made of these only is blank and refused. The OpenAPI document's
/// pattern for text fields is built from this list ([`not_blank_pattern`]), and a test
/// checks the list against every Unicode scalar value, so contract and validation agree.
pub const WHITESPACE: &[(char, char)] = &[
    ('\u{9}', '\u{d}'),
    ('\u{20}', '\u{20}'),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// A JSON Schema (ECMA-262) pattern matching strings with at least one character outside
/// [`WHITESPACE`]: the "not blank" rule of free-text fields.
#[must_use]
pub fn not_blank_pattern() -> String {
    let mut class = String::from("[^");
    for (low, high) in WHITESPACE {
        class.push_str(&format!("\\u{:04x}", u32::from(*low)));
        if low != high {
            class.push_str(&format!("-\\u{:04x}", u32::from(*high)));
        }
    }
    class.push(']');
    class
}

/// The JSON Schema pattern of idempotency keys: printable ASCII without spaces.
pub const KEY_PATTERN: &str = "^[!-~]+$";

/// Parses a JSON body into `T`, naming the field and position of the first problem.
///
/// # Errors
/// 415 when the body is not declared JSON, 413 when too large, 400 `malformed_json` when
/// it does not parse as `T`.
pub(crate) fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json")
        });
    if !is_json {
        return Err(ApiError::unsupported_media_type());
    }
    if body.len() > REQUEST_BYTES_MAX {
        return Err(ApiError::too_large(REQUEST_BYTES_MAX));
    }
    // A body that parses pays for plain serde_json only. One that does not is parsed again
    // with its path tracked, to name the field: the tracking wraps the same deserializer and
    // changes nothing it accepts, so the tracked parse fails too, with the error it always gave.
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    if let Ok(value) = T::deserialize(&mut deserializer)
        && deserializer.end().is_ok()
    {
        return Ok(value);
    }
    parse_json_tracked(body)
}

/// [`parse_json`]'s failure path: the error naming the field and position of the first
/// problem (and, were a body ever to parse only with its path tracked, the value).
fn parse_json_tracked<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::malformed(
            field,
            format!("{inner} (line {}, column {})", inner.line(), inner.column()),
        )
    })?;
    deserializer.end().map_err(|error| {
        ApiError::malformed(
            "body".into(),
            format!("{error} (line {}, column {})", error.line(), error.column()),
        )
    })?;
    Ok(value)
}

/// The error for a path parameter `{id}` axum could not extract: an id that is not UTF-8
/// once percent-decoded (`/v1/orders/%FF`) is a 400 naming the parameter, not a lookup of
/// the extractor's message as if it were an id.
pub(crate) fn path_id(rejection: &PathRejection) -> ApiError {
    match rejection {
        PathRejection::FailedToDeserializePathParams(_) => ApiError::validation(vec![FieldError {
            field: "id".into(),
            issue: "must be valid UTF-8 once percent-decoded".into(),
        }]),
        other => ApiError::internal(format!("route without its path parameter: {other}")),
    }
}

/// Collects field errors.
#[derive(Default)]
struct Issues(Vec<FieldError>);

impl Issues {
    fn check(&mut self, ok: bool, field: impl Into<String>, issue: impl Into<String>) {
        if !ok {
            self.0.push(FieldError {
                field: field.into(),
                issue: issue.into(),
            });
        }
    }

    fn text(&mut self, field: &str, value: &str) {
        self.check(
            value.chars().any(|c| !c.is_whitespace()),
            field,
            "must not be empty",
        );
        self.check(
            value.chars().count() <= TEXT_LEN_MAX,
            field,
            format!("must be at most {TEXT_LEN_MAX} characters"),
        );
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

/// Validates a new order.
///
/// # Errors
/// 400 `validation_failed` listing every invalid field.
pub(crate) fn order(request: &CreateOrderRequest) -> Result<(), ApiError> {
    let mut issues = Issues::default();
    issues.text("reference", &request.reference);
    issues.check(
        !request.items.is_empty(),
        "items",
        "must list at least one item",
    );
    issues.check(
        request.items.len() <= ORDER_ITEMS_MAX,
        "items",
        format!("must list at most {ORDER_ITEMS_MAX} items"),
    );
    for (index, item) in request.items.iter().enumerate() {
        issues.text(&format!("items[{index}].sku"), &item.sku);
        issues.check(
            (1..=ITEM_QUANTITY_MAX).contains(&item.quantity),
            format!("items[{index}].quantity"),
            format!("must be between 1 and {ITEM_QUANTITY_MAX}"),
        );
    }
    address(&mut issues, "ship_to", &request.ship_to);
    issues.finish()
}

fn address(issues: &mut Issues, prefix: &str, address: &Address) {
    issues.text(&format!("{prefix}.name"), &address.name);
    issues.text(&format!("{prefix}.line1"), &address.line1);
    issues.text(&format!("{prefix}.city"), &address.city);
    issues.text(&format!("{prefix}.postal_code"), &address.postal_code);
    issues.check(
        address.country.len() == 2 && address.country.bytes().all(|b| b.is_ascii_uppercase()),
        format!("{prefix}.country"),
        "must be an ISO 3166-1 alpha-2 code in upper case, e.g. DE",
    );
}

/// Validates a new shipment.
///
/// # Errors
/// 400 `validation_failed` listing every invalid field.
pub(crate) fn shipment(request: &CreateShipmentRequest) -> Result<(), ApiError> {
    let mut issues = Issues::default();
    issues.check(
        (1..=PARCEL_GRAMS_MAX).contains(&request.weight_grams),
        "weight_grams",
        format!("must be between 1 and {PARCEL_GRAMS_MAX}"),
    );
    issues.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OrderItem;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        headers
    }

    #[test]
    fn malformed_bodies_name_field_and_position() {
        // Proves parse errors say which field and where: a wrong type names its path, an
        // unknown field is refused, and broken JSON gives line and column.
        let wrong_type = parse_json::<CreateShipmentRequest>(
            &json_headers(),
            &Bytes::from_static(br#"{"service_level":"ground","weight_grams":"heavy"}"#),
        )
        .unwrap_err();
        assert_eq!(wrong_type.code, "malformed_json");
        assert_eq!(wrong_type.details[0].field, "weight_grams");

        let unknown = parse_json::<CreateShipmentRequest>(
            &json_headers(),
            &Bytes::from_static(br#"{"service_level":"ground","weight_grams":5,"colour":1}"#),
        )
        .unwrap_err();
        assert!(unknown.details[0].issue.contains("colour"), "{unknown:?}");

        let broken = parse_json::<CreateShipmentRequest>(
            &json_headers(),
            &Bytes::from_static(b"{\n  \"service_level\": "),
        )
        .unwrap_err();
        assert!(broken.details[0].issue.contains("line 2"), "{broken:?}");

        let trailing = parse_json::<CreateShipmentRequest>(
            &json_headers(),
            &Bytes::from_static(br#"{"service_level":"ground","weight_grams":5} x"#),
        )
        .unwrap_err();
        assert_eq!(trailing.code, "malformed_json");
    }

    #[test]
    fn a_body_parses_as_it_does_with_its_path_tracked() {
        // Proves the plain parse `parse_json` tries first gives what the path-tracked parse
        // gives, value or error, on bodies that parse (with escapes, defaults, whitespace)
        // and on bodies that do not (wrong type, unknown field, trailing text, duplicate
        // field, broken JSON), so only the cost of a good body changed.
        let bodies: [&[u8]; 10] = [
            br#"{"service_level":"ground","weight_grams":5}"#,
            b" {\"service_level\" : \"gro\\u0075nd\", \"weight_grams\": 70000 }\n",
            br#"{"weight_grams":1,"service_level":"express","idempotency_key":"k"}"#,
            br#"{"service_level":"ground","weight_grams":"heavy"}"#,
            br#"{"service_level":"ground","weight_grams":5,"colour":1}"#,
            br#"{"service_level":"ground","weight_grams":5} x"#,
            br#"{"service_level":"ground","service_level":"ground","weight_grams":5}"#,
            br#"{"service_level":"teleport","weight_grams":5}"#,
            b"{\n  \"service_level\": ",
            b"",
        ];
        for body in bodies {
            let body = Bytes::from_static(body);
            let plain = parse_json::<CreateShipmentRequest>(&json_headers(), &body);
            let tracked = parse_json_tracked::<CreateShipmentRequest>(&body);
            match (plain, tracked) {
                (Ok(plain), Ok(tracked)) => assert_eq!(plain, tracked),
                (Err(plain), Err(tracked)) => {
                    assert_eq!(plain.code, tracked.code);
                    assert_eq!(plain.message, tracked.message);
                    assert_eq!(plain.details, tracked.details);
                }
                (plain, tracked) => panic!("{body:?}: {plain:?} against {tracked:?}"),
            }
        }
    }

    #[test]
    fn whitespace_list_is_exactly_what_validation_refuses() {
        // Proves the ranges the OpenAPI pattern is built from are exactly the characters
        // `char::is_whitespace` accepts, over every Unicode scalar value, so a string the
        // contract calls blank is the one validation refuses, and no other.
        let listed = |c: char| {
            WHITESPACE
                .iter()
                .any(|(low, high)| (*low..=*high).contains(&c))
        };
        for c in (0..=0x10_ffff_u32).filter_map(char::from_u32) {
            assert_eq!(listed(c), c.is_whitespace(), "U+{:04X}", u32::from(c));
        }
        assert!(not_blank_pattern().starts_with("[^\\u0009-\\u000d\\u0020"));
    }

    #[test]
    fn content_type_and_size_are_enforced() {
        // Proves a non-JSON content type is 415 and an oversized body is 413.
        let not_json = parse_json::<CreateShipmentRequest>(&HeaderMap::new(), &Bytes::new());
        assert_eq!(not_json.unwrap_err().status.as_u16(), 415);
        let huge = Bytes::from(vec![b' '; REQUEST_BYTES_MAX + 1]);
        let too_large = parse_json::<CreateShipmentRequest>(&json_headers(), &huge);
        assert_eq!(too_large.unwrap_err().status.as_u16(), 413);
    }

    #[test]
    fn order_validation_lists_every_field() {
        // Proves validation reports all invalid fields at once, each by its path.
        let request = CreateOrderRequest {
            reference: " ".into(),
            items: vec![OrderItem {
                sku: "A".into(),
                quantity: 0,
            }],
            ship_to: Address {
                name: "N".into(),
                line1: "L".into(),
                city: "C".into(),
                postal_code: "P".into(),
                country: "germany".into(),
            },
            idempotency_key: None,
        };
        let error = order(&request).unwrap_err();
        let fields: Vec<_> = error.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            ["reference", "items[0].quantity", "ship_to.country"]
        );
    }
}
