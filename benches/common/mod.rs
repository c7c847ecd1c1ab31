//! What the load generators in `benches/` share: their arguments, CPU time and RSS from /proc,
//! and percentiles.

/// User and system CPU seconds of process `pid`, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|x| x.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

/// The `q` quantile (0 to 1) of `v`, which it sorts; 0 for none.
pub fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

/// Resident memory of process `pid` in MB, from `/proc/PID/status`; 0 when unreadable.
#[allow(dead_code)] // not every generator reports it
pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The generator's arguments (without the `--bench` cargo adds), or its usage and exit 2 when
/// there are fewer than `at_least`.
pub fn args(at_least: usize, usage: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < at_least {
        eprintln!("usage: {usage}");
        std::process::exit(2);
    }
    args
}
