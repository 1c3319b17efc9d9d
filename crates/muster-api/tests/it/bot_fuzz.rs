//! Property tests of every decoder of bot-supplied data: bot API JSON
//! bodies, base64 output chunks, the bot executable's config trailer. Inputs
//! are generated valid and then (often) damaged, so the tests check both
//! that damage gives an error, never a panic, and that valid inputs decode
//! (a decoder that failed on everything would pass a no-panic test).

use muster_api::bot::{self, EventRequest, HandshakeRequest, PollRequest, TaskErrorRequest, TaskUpdateRequest};
use muster_api::trailer::{self, BotConfig};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Value};

fn dims() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z][a-z0-9_.-]{0,8}", prop::collection::vec("[ -~é]{1,10}", 1..4), 1..5)
        .prop_map(|m| json!(m))
}

fn state() -> impl Strategy<Value = Value> {
    (0u32..10_000, 0u32..50, "[a-z ]{0,20}")
        .prop_map(|(t, s, q)| json!({"running_time": t, "sleep_streak": s, "quarantined": q}))
}

/// What a bot may send to each endpoint, as JSON bytes.
#[derive(Debug, Clone)]
enum Body {
    Handshake(Vec<u8>),
    Poll(Vec<u8>),
    Update(Vec<u8>),
    Error(Vec<u8>),
    Event(Vec<u8>),
}

fn bodies() -> impl Strategy<Value = Body> {
    let session = proptest::option::of("[A-Za-z0-9+/=._-]{0,40}");
    prop_oneof![
        (dims(), state(), "[0-9a-f]{0,64}", proptest::option::of("[a-z0-9/-]{1,20}")).prop_map(|(d, s, v, id)| {
            Body::Handshake(
                json!({"dimensions": d, "state": s, "version": v, "session_id": id}).to_string().into_bytes(),
            )
        }),
        (dims(), state(), session.clone(), proptest::option::of("[0-9a-f-]{36}")).prop_map(|(d, s, se, u)| {
            Body::Poll(
                json!({"dimensions": d, "state": s, "version": "", "session": se, "request_uuid": u})
                    .to_string()
                    .into_bytes(),
            )
        }),
        (
            prop::collection::vec(any::<u8>(), 0..512),
            proptest::option::of(0u64..200_000_000),
            proptest::option::of(-1000i64..1000),
            session.clone()
        )
            .prop_map(|(out, start, code, se)| {
                let mut v = json!({"id": "bot1", "task_id": "1a2b3c4d5e6f7081", "session": se,
                                   "output": bot::encode_b64(&out), "cost_usd": 0.01});
                if let Some(s) = start {
                    v["output_chunk_start"] = json!(s);
                }
                if let Some(c) = code {
                    v["exit_code"] = json!(c);
                    v["duration"] = json!(1.5);
                }
                Body::Update(v.to_string().into_bytes())
            }),
        ("[ -~]{0,100}", session.clone()).prop_map(|(m, se)| {
            Body::Error(
                json!({"id": "bot1", "task_id": "1a2b3c4d5e6f7081", "session": se, "message": m,
                       "client_error": {"missing_cas": [], "missing_cipd": []}})
                .to_string()
                .into_bytes(),
            )
        }),
        (dims(), state(), prop::sample::select(bot::BOT_EVENTS.to_vec()), "[ -~]{0,60}", session).prop_map(
            |(d, s, e, m, se)| {
                Body::Event(
                    json!({"dimensions": d, "state": s, "version": "", "event": e, "message": m, "session": se})
                        .to_string()
                        .into_bytes(),
                )
            }
        ),
    ]
}

/// Damage to apply to valid bytes.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(prop::sample::Index),
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => Just(Damage::None),
        1 => any::<prop::sample::Index>().prop_map(Damage::Truncate),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Flip(i, b)),
        1 => (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Damage::Insert(i, b)),
    ]
}

fn apply(mut b: Vec<u8>, d: &Damage) -> Vec<u8> {
    match d {
        Damage::None => {}
        Damage::Truncate(i) => b.truncate(i.index(b.len().max(1))),
        Damage::Flip(i, x) if !b.is_empty() => {
            let i = i.index(b.len());
            b[i] ^= x | 1;
        }
        Damage::Flip(..) => {}
        Damage::Insert(i, x) => {
            let i = i.index(b.len() + 1);
            b.splice(i..i, x.iter().copied());
        }
    }
    b
}

/// Decodes a body as the server does (JSON, then dimensions and output).
fn decode(body: &Body) -> Result<(), String> {
    fn json<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, String> {
        serde_json::from_slice(b).map_err(|e| e.to_string())
    }
    match body {
        Body::Handshake(b) => bot::parse_dimensions(&json::<HandshakeRequest>(b)?.dimensions).map(drop),
        Body::Poll(b) => bot::parse_dimensions(&json::<PollRequest>(b)?.dimensions).map(drop),
        Body::Update(b) => json::<TaskUpdateRequest>(b)?.output_bytes().map(drop),
        Body::Error(b) => json::<TaskErrorRequest>(b).map(drop),
        Body::Event(b) => bot::parse_dimensions(&json::<EventRequest>(b)?.dimensions).map(drop),
    }
}

fn damaged(body: Body, d: &Damage) -> Body {
    match body {
        Body::Handshake(b) => Body::Handshake(apply(b, d)),
        Body::Poll(b) => Body::Poll(apply(b, d)),
        Body::Update(b) => Body::Update(apply(b, d)),
        Body::Error(b) => Body::Error(apply(b, d)),
        Body::Event(b) => Body::Event(apply(b, d)),
    }
}

/// The share of `n` generated values for which `ok` holds.
fn share<S: Strategy>(s: S, n: usize, ok: impl Fn(S::Value) -> bool) -> f64 {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let hits = (0..n).filter(|_| ok(s.new_tree(&mut runner).expect("generates").current())).count();
    hits as f64 / n as f64
}

proptest! {
    #[test]
    fn bot_api_bodies_decode_or_fail_cleanly(body in bodies(), d in damage()) {
        let intact = matches!(d, Damage::None);
        let r = decode(&damaged(body, &d));
        if intact {
            prop_assert!(r.is_ok(), "a valid body was refused: {r:?}");
        }
    }

    #[test]
    fn output_chunks_decode_in_every_accepted_spelling(data in prop::collection::vec(any::<u8>(), 0..600), how in 0u8..5, at in any::<prop::sample::Index>(), junk in any::<u8>()) {
        use base64::Engine;
        let std = bot::encode_b64(&data);
        let text = match how {
            0 => std.clone(),
            1 => std.trim_end_matches('=').to_string(),
            2 => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&data),
            3 => std.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).to_string() + "\n").collect(),
            _ => {
                // Damaged: a byte replaced by anything (maybe not UTF-8, not base64).
                let mut b = std.clone().into_bytes();
                b.push(b'=');
                let i = at.index(b.len());
                b[i] = junk;
                let _ = bot::decode_b64(&String::from_utf8_lossy(&b));
                return Ok(());
            }
        };
        prop_assert_eq!(bot::decode_b64(&text), Ok(data));
    }

    #[test]
    fn the_trailer_round_trips_and_damage_never_panics(
        exe in prop::collection::vec(any::<u8>(), 0..256),
        server in "https?://[a-z0-9.:-]{1,30}",
        dims in prop::collection::btree_map("[a-z]{1,8}", prop::collection::vec("[a-z0-9]{1,8}", 1..3), 0..4),
        hook in proptest::option::of("[ -~\n]{0,80}"),
        d in damage(),
        tail_len in any::<u64>(),
    ) {
        let cfg = BotConfig { server, dimensions: dims, hook_script: hook };
        let file = trailer::append(&exe, &cfg);
        let (body, got) = trailer::split(&file);
        prop_assert_eq!(body, &exe[..]);
        prop_assert_eq!(got, Some(cfg));
        // Damaged anywhere, or with a lying length: an answer, never a panic.
        let bad = apply(file.clone(), &d);
        let (body, _) = trailer::split(&bad);
        prop_assert!(body.len() <= bad.len());
        let mut lying = file;
        let n = lying.len();
        lying[n - 16..n - 8].copy_from_slice(&tail_len.to_le_bytes());
        let (body, _) = trailer::split(&lying);
        prop_assert!(body.len() <= lying.len());
    }
}

/// Most generated bodies (damaged ones included) decode: the no-panic
/// property above is not vacuous.
#[test]
fn a_meaningful_share_of_generated_inputs_decodes() {
    let decoded = share((bodies(), damage()), 400, |(b, d)| decode(&damaged(b, &d)).is_ok());
    assert!(decoded > 0.4, "only {:.0}% of bot API bodies decoded", decoded * 100.0);
    let damaged_only =
        share((bodies(), damage().prop_filter("damaged", |d| !matches!(d, Damage::None))), 400, |(b, d)| {
            decode(&damaged(b, &d)).is_err()
        });
    assert!(damaged_only > 0.3, "only {:.0}% of damaged bodies were refused", damaged_only * 100.0);
}
