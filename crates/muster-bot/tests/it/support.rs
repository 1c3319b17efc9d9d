//! Test helpers: a recording update sink and manifest builders.

use async_trait::async_trait;
use muster_api::bot::{decode_b64, Manifest, TaskUpdateRequest};
use muster_bot::{RunnerConfig, SinkError, TaskRunner, UpdateSink};
use std::sync::Mutex;
use std::time::Duration;

/// Records accepted packets; can answer `must_stop` or fail on demand.
#[derive(Default)]
pub struct MemorySink {
    pub packets: Mutex<Vec<TaskUpdateRequest>>,
    pub errors: Mutex<Vec<(String, String)>>,
    /// Answer `must_stop` to the start packet.
    pub stop_at_start: bool,
    /// Answer `must_stop` once a packet carried output.
    pub stop_on_output: bool,
    /// Fail (transiently) this many packets that carry output before accepting.
    pub fail_output_packets: Mutex<usize>,
}

#[async_trait]
impl UpdateSink for MemorySink {
    async fn update(&self, p: TaskUpdateRequest) -> Result<bool, SinkError> {
        if p.output.is_some() {
            let mut left = self.fail_output_packets.lock().expect("lock");
            if *left > 0 {
                *left -= 1;
                return Err(SinkError::Transient("server is restarting".into()));
            }
        }
        let mut packets = self.packets.lock().expect("lock");
        let first = packets.is_empty();
        packets.push(p.clone());
        Ok((first && self.stop_at_start) || (self.stop_on_output && packets.iter().any(|q| q.output.is_some())))
    }

    async fn task_error(&self, task_id: &str, message: &str) -> Result<(), SinkError> {
        self.errors.lock().expect("lock").push((task_id.to_string(), message.to_string()));
        Ok(())
    }
}

impl MemorySink {
    pub fn packets(&self) -> Vec<TaskUpdateRequest> {
        self.packets.lock().expect("lock").clone()
    }

    /// Reassembles the output, asserting every chunk starts where the last ended.
    pub fn output(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in self.packets() {
            if let Some(o) = &p.output {
                assert_eq!(p.output_chunk_start, Some(out.len() as u64), "chunks must be contiguous");
                out.extend(decode_b64(o).expect("base64"));
            }
        }
        out
    }

    pub fn last(&self) -> TaskUpdateRequest {
        self.packets().last().cloned().expect("at least one packet")
    }
}

/// A manifest running `sh -c script`.
pub fn shell(task_id: &str, script: &str) -> Manifest {
    Manifest {
        task_id: task_id.to_string(),
        bot_id: "bot1".into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        grace_period: 1.0,
        hard_timeout: 60.0,
        io_timeout: 0.0,
        ..Default::default()
    }
}

/// A runner over `dir` with a short retry pause.
pub fn runner(dir: &std::path::Path) -> TaskRunner {
    let mut r = TaskRunner::new(dir, "bot1", "http://127.0.0.1:9");
    r.config = RunnerConfig { retry_pause: Duration::from_millis(50), ..RunnerConfig::default() };
    r
}

/// A URL on 127.0.0.1 where nothing listens (connections are refused).
pub fn refusing_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}
