//! The pRPC text encoding (`application/prpc; encoding=text`): protobuf
//! text format, transcoded to and from binary with the descriptors of our
//! own .proto files (embedded at build time), so handlers only ever see
//! binary.

use crate::prpc::Status;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use std::sync::OnceLock;

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swarming_descriptor.bin"));

fn pool() -> Result<&'static DescriptorPool, Status> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTORS).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Status::internal(format!("loading descriptors: {e}")))
}

/// The input (`request`) or output message of `service`/`method`.
fn method_message(service: &str, method: &str, request: bool) -> Result<MessageDescriptor, Status> {
    let svc = pool()?
        .get_service_by_name(service)
        .ok_or_else(|| Status::unimplemented(format!("service {service:?} is not implemented")))?;
    let m = svc
        .methods()
        .find(|m| m.name() == method)
        .ok_or_else(|| Status::unimplemented(format!("method {method:?} in service {service:?} is not implemented")))?;
    Ok(if request { m.input() } else { m.output() })
}

/// A text-format request body of `service`/`method` as binary protobuf.
/// Malformed text is INVALID_ARGUMENT.
pub fn request_to_binary(service: &str, method: &str, body: &[u8]) -> Result<Vec<u8>, Status> {
    let desc = method_message(service, method, true)?;
    let text =
        std::str::from_utf8(body).map_err(|e| Status::invalid_argument(format!("could not decode body: {e}")))?;
    let msg = DynamicMessage::parse_text_format(desc, text)
        .map_err(|e| Status::invalid_argument(format!("could not decode body: {e}")))?;
    Ok(msg.encode_to_vec())
}

/// A binary response of `service`/`method` as text format.
pub fn response_to_text(service: &str, method: &str, body: &[u8]) -> Result<Vec<u8>, Status> {
    let desc = method_message(service, method, false)?;
    let msg =
        DynamicMessage::decode(desc, body).map_err(|e| Status::internal(format!("could not encode response: {e}")))?;
    Ok(msg.to_text_format().into_bytes())
}

/// A message as text format, given its full name (e.g. for tests and the
/// client side).
pub fn to_text<M: prost::Message>(full_name: &str, msg: &M) -> Result<String, Status> {
    let desc = pool()?
        .get_message_by_name(full_name)
        .ok_or_else(|| Status::internal(format!("unknown message {full_name}")))?;
    let dm = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("could not encode {full_name}: {e}")))?;
    Ok(dm.to_text_format())
}

/// Text format as a message, given its full name.
pub fn from_text<M: prost::Message + Default>(full_name: &str, text: &str) -> Result<M, Status> {
    let desc = pool()?
        .get_message_by_name(full_name)
        .ok_or_else(|| Status::internal(format!("unknown message {full_name}")))?;
    let dm = DynamicMessage::parse_text_format(desc, text)
        .map_err(|e| Status::invalid_argument(format!("could not decode {full_name}: {e}")))?;
    M::decode(dm.encode_to_vec().as_slice())
        .map_err(|e| Status::invalid_argument(format!("could not decode {full_name}: {e}")))
}
