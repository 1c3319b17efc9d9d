//! Integration tests of muster-api: wire goldens (docs/client-api.md#json-mapping), pRPC
//! negotiation and errors (#prpc, #errors-and-codes), domain conversions (#stored-request, #result-view, #bots-and-events)
//! and fuzzing of the decoders.

mod bot_fuzz;
mod convert;
mod fuzz;
mod prpc;
mod wire;

/// Reads a fixture from `tests/data/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The JSON object of an encoded response, after checking the `)]}'` framing.
pub fn response_json(body: &[u8]) -> serde_json::Value {
    assert!(body.starts_with(b")]}'\n"), "JSON response must start with the XSSI prefix");
    assert!(body.ends_with(b"\n"), "JSON response must end with a newline");
    serde_json::from_slice(&body[5..]).expect("response body is JSON")
}
