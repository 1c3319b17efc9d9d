//! Property tests: decoders never panic on arbitrary input, and what
//! decodes re-encodes to the same message. The round-trip properties are fed
//! mostly well-formed requests (with random values and now and then a field
//! replaced by arbitrary JSON), and a counting test checks that a real share
//! of them decodes: a round trip over inputs that never decode proves nothing.

use muster_api::bot;
use muster_api::pb;
use muster_api::prpc::{self, Format};
use proptest::prelude::*;
use serde_json::Value;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9_:|. -]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("taskSlices".to_string()),
                    Just("properties".to_string()),
                    Just("dimensions".to_string()),
                    Just("secret_bytes".to_string()),
                    Just("priority".to_string()),
                    Just("key".to_string()),
                    Just("value".to_string()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A NewTaskRequest in pRPC JSON with random values.
fn arb_task_json() -> impl Strategy<Value = Value> {
    let text = "[a-zA-Z0-9_:. -]{0,12}";
    let pair = (text, text).prop_map(|(k, v)| serde_json::json!({"key": k, "value": v}));
    let props = (
        prop::collection::vec(text, 0..4),
        prop::collection::vec(pair.clone(), 0..4),
        prop::collection::vec(pair, 0..2),
        0i32..100_000,
        any::<bool>(),
    )
        .prop_map(|(command, dimensions, env, timeout, idempotent)| {
            serde_json::json!({"command": command, "dimensions": dimensions, "env": env,
                               "executionTimeoutSecs": timeout, "idempotent": idempotent})
        });
    let slice = (0i32..100_000, props, any::<bool>()).prop_map(|(expiration, properties, wait)| {
        serde_json::json!({"expirationSecs": expiration, "properties": properties, "waitForCapacity": wait})
    });
    (text, any::<i32>(), prop::collection::vec(slice, 0..3), prop::collection::vec(text, 0..3), text).prop_map(
        |(name, priority, slices, tags, uuid)| {
            serde_json::json!({"name": name, "priority": priority, "taskSlices": slices, "tags": tags,
                               "requestUuid": uuid})
        },
    )
}

/// Mostly well-formed requests, some with one top-level field replaced by
/// arbitrary JSON, some arbitrary JSON outright.
fn arb_request_like_json() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("name"),
        Just("priority"),
        Just("taskSlices"),
        Just("tags"),
        Just("requestUuid"),
        Just("unknownField")
    ];
    let damaged = (arb_task_json(), field, arb_json()).prop_map(|(mut v, f, junk)| {
        v[f] = junk;
        v
    });
    prop_oneof![3 => arb_task_json(), 1 => damaged, 1 => arb_json()]
}

/// Decodes `text`; whatever decodes must re-encode (JSON and binary) and
/// decode to the same message. Returns whether it decoded.
fn json_round_trip(text: &[u8]) -> Result<bool, TestCaseError> {
    let Ok(req) = prpc::decode::<pb::NewTaskRequest>(Format::Json, text) else {
        return Ok(false);
    };
    let (_, body) = prpc::encode(Format::Json, &req).expect("encodes");
    let again: pb::NewTaskRequest =
        prpc::decode(Format::Json, prpc::strip_json_prefix(&body)).expect("own output decodes");
    prop_assert_eq!(&again, &req);
    let (_, bin) = prpc::encode(Format::Binary, &req).expect("encodes");
    let again: pb::NewTaskRequest = prpc::decode(Format::Binary, &bin).expect("own binary decodes");
    prop_assert_eq!(&again, &req);
    Ok(true)
}

/// The generator behind the round-trip property is worth running: most of
/// its inputs decode (a decoder that rejected everything would fail here),
/// and some are rejected (so the damaged ones really are damaged).
#[test]
fn most_request_like_inputs_decode_and_round_trip() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = arb_request_like_json();
    let n = 1000;
    let mut decoded = 0;
    for _ in 0..n {
        let v = strategy.new_tree(&mut runner).expect("a value").current();
        let text = serde_json::to_vec(&v).expect("a Value serializes");
        if json_round_trip(&text).unwrap_or_else(|e| panic!("{e}: {v}")) {
            decoded += 1;
        }
    }
    assert!(decoded * 2 >= n, "only {decoded} of {n} request-like inputs decoded");
    assert!(decoded < n, "every input decoded: the damaged ones are not damaged");
}

proptest! {
    #[test]
    fn binary_decoding_of_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = prpc::decode::<pb::NewTaskRequest>(Format::Binary, &bytes);
    }

    #[test]
    fn json_decoding_of_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = prpc::decode::<pb::NewTaskRequest>(Format::Json, &bytes);
    }

    #[test]
    fn decoded_json_requests_re_encode_to_the_same_message(v in arb_request_like_json()) {
        let text = serde_json::to_vec(&v).expect("a Value serializes");
        json_round_trip(&text)?;
    }

    #[test]
    fn decoded_binary_messages_re_encode_identically(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(req) = prpc::decode::<pb::NewTaskRequest>(Format::Binary, &bytes) {
            let (_, body) = prpc::encode(Format::Binary, &req).expect("encodes");
            let again: pb::NewTaskRequest = prpc::decode(Format::Binary, &body).expect("own output decodes");
            prop_assert_eq!(again, req);
        }
    }

    #[test]
    fn json_decoding_of_random_json_never_panics(v in arb_json()) {
        let text = serde_json::to_vec(&v).expect("a Value serializes");
        let _ = prpc::decode::<pb::NewTaskRequest>(Format::Json, &text);
    }

    #[test]
    fn parse_dimensions_accepts_exactly_dicts_of_string_lists(v in arb_json()) {
        let well_formed = match &v {
            Value::Null => true,
            Value::Object(m) => m.values().all(|x| x.as_array().is_some_and(|a| a.iter().all(Value::is_string))),
            _ => false,
        };
        match bot::parse_dimensions(&v) {
            Ok(d) => {
                prop_assert!(well_formed, "accepted {v}");
                for values in d.0.values() {
                    let mut sorted = values.clone();
                    sorted.sort();
                    sorted.dedup();
                    prop_assert_eq!(&sorted, values);
                }
            }
            Err(_) => prop_assert!(!well_formed, "rejected {v}"),
        }
    }
}
