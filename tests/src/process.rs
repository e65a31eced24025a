//! Child processes that run in their own process group, log to a file and stop with the test.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The line the CAS server logs once it listens, at `info`, the level its starters set.
pub const SERVER_READY: &str = "CAS server listening";

/// Times a start is tried on new ports after the process found its port taken.
pub const START_ATTEMPTS: usize = 3;

/// A started child process; dropping it stops its whole process group.
pub struct ManagedProcess {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ManagedProcess {
    /// Starts `command` in a new process group with stdout and stderr sent to `log_dir/name.log`.
    pub fn start(name: &str, mut command: Command, log_dir: &Path) -> Self {
        let log = log_dir.join(format!("{name}.log"));
        let out =
            File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone log handle: {e}"));

        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// Returns the last lines of the process log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits until the process log contains `ready_line`, which the process writes once it
    /// listens. A port that was free when picked can be taken by another test before the
    /// process binds it, and a connection to that port would then reach the other test's
    /// listener, so only the process's own line counts. Returns [`Startup::PortTaken`]
    /// when the process exited because its port was taken, and panics with the log tail
    /// on any other exit or after 90 s.
    pub async fn wait_for_start(&mut self, ready_line: &str) -> Startup {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(ready_line) {
                return Startup::Ready;
            }

            if let Ok(Some(status)) = self.child.try_wait() {
                if log.contains("Address already in use") {
                    return Startup::PortTaken;
                }
                panic!("{} exited with {status}:\n{}", self.name, self.log_tail());
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not log {ready_line:?} within 90 s:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Panics with the log tail when the process has already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}:\n{}", self.name, self.log_tail());
        }
    }
}

/// How [`ManagedProcess::wait_for_start`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Startup {
    /// The process logged its ready line.
    Ready,
    /// The process exited because another process had its port.
    PortTaken,
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();

        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Starts the process that `command_for` makes for a free port, waits until it logs
/// `ready_line` and returns it with the port. A port that was free when picked can be
/// taken by another test before the process binds it, so a start that fails on a taken
/// port is tried again on a new one.
pub async fn start_listening(
    name: &str,
    ready_line: &str,
    dir: &Path,
    command_for: impl Fn(u16) -> Command,
) -> (ManagedProcess, u16) {
    for _ in 0..START_ATTEMPTS {
        let port = free_port();
        let mut process = ManagedProcess::start(name, command_for(port), dir);
        if process.wait_for_start(ready_line).await == Startup::Ready {
            return (process, port);
        }
    }
    panic!("{name} found its port taken {START_ATTEMPTS} times in a row");
}

/// Returns a loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("cannot bind a port: {e}"));
    listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no local address: {e}"))
}

/// Returns the repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[tokio::test]
    async fn start_waits_for_ready_line() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let script = "sleep 0.3; echo 'listening soon'; sleep 0.3; echo 'server ready'; sleep 30";
        let mut process = ManagedProcess::start("ready", shell(script), dir.path());

        assert_eq!(process.wait_for_start("server ready").await, Startup::Ready);
        process.assert_running();
    }

    #[tokio::test]
    async fn start_reports_taken_port() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let script = "echo 'Address already in use (127.0.0.1:1)' >&2; exit 1";
        let mut process = ManagedProcess::start("taken", shell(script), dir.path());

        assert_eq!(
            process.wait_for_start("server ready").await,
            Startup::PortTaken
        );
    }

    #[tokio::test]
    #[should_panic(expected = "failing exited with")]
    async fn start_panics_on_other_exit() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let script = "echo 'invalid setting' >&2; exit 2";
        let mut process = ManagedProcess::start("failing", shell(script), dir.path());

        process.wait_for_start("server ready").await;
    }
}
