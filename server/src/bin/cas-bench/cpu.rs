//! CPU time of a process from `/proc/PID/stat`, so a run can report the CPU each side
//! spends per request. That figure moves much less than throughput with other load on
//! the machine.

use std::time::Duration;

use crate::client::BenchError;

/// Clock ticks per second of the `utime` and `stime` fields. Linux reports them in
/// USER_HZ, which is 100 on x86 and ARM (`getconf CLK_TCK`).
const TICKS_PER_SECOND: u64 = 100;

/// The process whose CPU time is read: this load generator or the measured server.
#[derive(Clone, Copy)]
pub enum Process {
    This,
    Other(u32),
}

/// Returns the user plus system CPU time that all threads of `process` used so far.
pub fn cpu_time(process: Process) -> Result<Duration, BenchError> {
    let path = match process {
        Process::This => "/proc/self/stat".to_owned(),
        Process::Other(pid) => format!("/proc/{pid}/stat"),
    };
    let stat =
        std::fs::read_to_string(&path).map_err(|error| format!("cannot read {path}: {error}"))?;
    let ticks = parse_cpu_ticks(&stat).ok_or_else(|| format!("unexpected format of {path}"))?;
    Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// Returns `utime + stime`, fields 14 and 15 of a stat line. The command name in field
/// 2 may contain spaces and parentheses, so the fields are counted after its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_after_name_with_spaces() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 4 0";

        assert_eq!(parse_cpu_ticks(stat), Some(325));
    }

    #[test]
    fn ticks_of_this_process() {
        assert!(cpu_time(Process::This).is_ok());
    }
}
