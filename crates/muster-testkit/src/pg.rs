//! A throwaway PostgreSQL server for tests: [`TempPostgres`].
//!
//! Finds `initdb`/`pg_ctl` (Debian keeps them in
//! `/usr/lib/postgresql/<ver>/bin`; `MUSTER_PG_BIN` overrides), creates a
//! cluster in a temp dir with trust auth, starts it on a free 127.0.0.1
//! port with its socket in the same dir, hands out one fresh database per
//! caller and stops the server on drop. PostgreSQL refuses to run as root,
//! so under euid 0 the cluster belongs to the `postgres` system user and
//! its commands run through `runuser`. A missing PostgreSQL is a test
//! failure with instructions, never a silent skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// A running PostgreSQL cluster in a temp dir.
pub struct TempPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
    running: bool,
    /// Tests run PostgreSQL with `fsync=off` for speed; the durability
    /// check runs it as a deployment would.
    fsync: bool,
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("MUSTER_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(dir.join("initdb").exists(), "MUSTER_PG_BIN={} has no initdb", dir.display());
        return dir;
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.split('.').next()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    if let Ok(out) = Command::new("sh").args(["-c", "command -v initdb"]).output() {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !p.is_empty() {
            if let Some(dir) = Path::new(&p).parent() {
                return dir.to_path_buf();
            }
        }
    }
    panic!(
        "PostgreSQL's initdb was not found (looked in /usr/lib/postgresql/*/bin and PATH): the PostgreSQL \
         store tests need a real server. Install it with `apt-get install postgresql` (scripts/test.sh does) \
         or point MUSTER_PG_BIN at the directory holding initdb and pg_ctl."
    );
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl TempPostgres {
    /// Creates and starts a new cluster with `fsync=off` (tests do not
    /// survive power loss anyway); panics (with the server log) when it
    /// cannot.
    pub fn start() -> TempPostgres {
        TempPostgres::start_with_fsync(false)
    }

    /// Like [`TempPostgres::start`] with PostgreSQL's default `fsync=on`,
    /// as a deployment runs it.
    pub fn start_durable() -> TempPostgres {
        TempPostgres::start_with_fsync(true)
    }

    fn start_with_fsync(fsync: bool) -> TempPostgres {
        let bin = find_bin();
        let dir = tempfile::Builder::new().prefix("muster-pg-").tempdir().expect("temp dir for postgres");
        let as_postgres_user = is_root();
        let mut pg = TempPostgres { dir, bin, port: 0, as_postgres_user, running: false, fsync };
        if as_postgres_user {
            let status =
                Command::new("chown").args(["-R", "postgres:postgres"]).arg(pg.dir.path()).status().expect("run chown");
            assert!(
                status.success(),
                "chown of the temp dir to the postgres user failed (is the postgres package installed?)"
            );
        }
        let data = pg.data_dir();
        pg.run(
            "initdb",
            &["-D", path_str(&data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
        );
        pg.start_server();
        pg
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Runs a PostgreSQL program (as the `postgres` user under root);
    /// panics with its output on failure.
    fn try_run(&self, prog: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(prog);
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).current_dir(self.dir.path());
        let out = cmd.output().map_err(|e| format!("running {}: {e}", exe.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {:?} failed ({}):\n{}\n{}",
                exe.display(),
                args,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn run(&self, prog: &str, args: &[&str]) {
        if let Err(e) = self.try_run(prog, args) {
            panic!("{e}");
        }
    }

    /// Starts the server on a free port (retrying if another process took
    /// the port in between).
    fn start_server(&mut self) {
        let mut last = String::new();
        for _ in 0..5 {
            let port = if self.port == 0 { free_port() } else { self.port };
            let opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c max_connections=100",
                path_str(self.dir.path()),
                if self.fsync { "on" } else { "off" }
            );
            let data = self.data_dir();
            let log = self.log_file();
            match self.try_run("pg_ctl", &["-D", path_str(&data), "-l", path_str(&log), "-o", &opts, "-w", "start"]) {
                Ok(()) => {
                    self.port = port;
                    self.running = true;
                    return;
                }
                Err(e) => {
                    let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
                    last = format!("{e}\nserver log:\n{log}");
                    self.port = 0;
                }
            }
        }
        panic!("could not start postgres: {last}");
    }

    /// Stops the server cleanly (a checkpoint: everything committed stays).
    pub fn stop(&mut self) {
        if self.running {
            let data = self.data_dir();
            self.run("pg_ctl", &["-D", path_str(&data), "-m", "fast", "-w", "stop"]);
            self.running = false;
        }
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.start_server();
    }

    /// The connection string of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={db}", self.port)
    }

    /// The `postgres://` URL of database `db` (the form `muster server --database` takes).
    pub fn postgres_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a new empty database and returns its connection string.
    pub async fn create_database(&self) -> String {
        let name = format!("muster_test_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed));
        let client = self.connect("postgres").await;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
        self.url(&name)
    }

    /// A plain driver connection to database `db` (for poking at tables).
    pub async fn connect(&self, db: &str) -> tokio_postgres::Client {
        let (client, conn) =
            tokio_postgres::connect(&self.url(db), tokio_postgres::NoTls).await.expect("connect to test postgres");
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("test postgres connection: {e}");
            }
        });
        client
    }

    /// The database name inside a connection string from [`Self::url`].
    pub fn db_name(url: &str) -> &str {
        url.rsplit("dbname=").next().unwrap_or_default()
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            if let Err(e) = self.try_run("pg_ctl", &["-D", path_str(&data), "-m", "immediate", "-w", "stop"]) {
                eprintln!("stopping test postgres: {e}");
            }
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}
