//! A throwaway single-node Slurm cluster in a folder: its own munge key and `munged`, a
//! `slurm.conf` with free ports, spool, state and log folders inside the folder, `slurmctld` and
//! `slurmd` run in the foreground as this process's children (so they are stopped and reaped
//! here, also when a test fails: `Drop`). Client commands get `SLURM_CONF` from [`Cluster::cmd`].

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The programs the cluster needs (Debian: `slurmctld slurmd slurm-client munge`).
pub const PROGRAMS: [&str; 8] = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo"];

/// Whether every program of [`PROGRAMS`] is on the PATH (or in /usr/sbin).
pub fn available() -> bool {
    PROGRAMS.iter().all(|p| which(p).is_some())
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")]).map(|d| d.join(program)).find(|p| p.is_file())
}

pub struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Mutex<Vec<(&'static str, Child)>>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free local port")
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Cluster {
    /// Starts munged, slurmctld and slurmd with everything under `dir` (created), and waits until
    /// the node is idle. Panics, after stopping what it started, when the cluster does not come up.
    pub fn start(dir: &Path) -> Cluster {
        assert!(
            available(),
            "Slurm is not installed: this test needs {} (Debian: apt-get install slurmctld slurmd slurm-client munge; `cargo xtask test` installs them)",
            PROGRAMS.join(", ")
        );
        for sub in ["munge", "spool", "state", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let dir = dir.canonicalize().unwrap();
        let munge = dir.join("munge");
        let key = munge.join("munge.key");
        let mut bytes = vec![0u8; 1024];
        std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
        std::fs::write(&key, &bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        std::fs::set_permissions(&munge, std::fs::Permissions::from_mode(0o711)).unwrap();
        let socket = munge.join("munge.socket");

        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let user = current_user();
        // The node's memory as Slurm counts it (MB), so `--mem` requests are checked against it.
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kb: u64 = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(1 << 20);
        let conf = dir.join("slurm.conf");
        let d = dir.display();
        let ctld = free_port();
        let slurmd = std::iter::repeat_with(free_port).find(|&p| p != ctld).expect("a second free port");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=ogmgetest\n\
                 SlurmctldHost={host}(127.0.0.1)\n\
                 SlurmctldPort={ctld}\n\
                 SlurmdPort={slurmd}\n\
                 SlurmUser={user}\n\
                 SlurmdUser={user}\n\
                 AuthType=auth/munge\n\
                 AuthInfo=socket={socket}\n\
                 CredType=cred/munge\n\
                 StateSaveLocation={d}/state\n\
                 SlurmdSpoolDir={d}/spool\n\
                 SlurmctldPidFile={d}/slurmctld.pid\n\
                 SlurmdPidFile={d}/slurmd.pid\n\
                 SlurmctldLogFile={d}/log/slurmctld.log\n\
                 SlurmdLogFile={d}/log/slurmd.log\n\
                 ProctrackType=proctrack/linuxproc\n\
                 TaskPlugin=task/none\n\
                 JobAcctGatherType=jobacct_gather/none\n\
                 AccountingStorageType=accounting_storage/none\n\
                 SelectType=select/cons_tres\n\
                 SelectTypeParameters=CR_CPU\n\
                 MpiDefault=none\n\
                 ReturnToService=2\n\
                 MinJobAge=600\n\
                 KillWait=5\n\
                 NodeName=ogmgenode NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN\n\
                 PartitionName=ogmge Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
                mem = mem_kb / 1024 * 9 / 10,
                socket = socket.display(),
            ),
        )
        .unwrap();

        let cluster = Cluster { dir: dir.clone(), conf, daemons: Mutex::new(Vec::new()) };
        let log = |name: &str| std::fs::File::create(dir.join("log").join(format!("{name}.stderr"))).unwrap();
        let spawn = |name: &'static str, cmd: &mut Command| -> (&'static str, Child) {
            (
                name,
                cmd.env("SLURM_CONF", dir.join("slurm.conf"))
                    .stdin(Stdio::null())
                    .stdout(log(name))
                    .stderr(log(name))
                    .spawn()
                    .unwrap_or_else(|e| panic!("starting {name}: {e}")),
            )
        };
        cluster.daemons.lock().unwrap().push(spawn(
            "munged",
            Command::new(which("munged").unwrap())
                .arg("--foreground")
                .arg("--force")
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", munge.join("munged.pid").display()))
                .arg(format!("--log-file={}", munge.join("munged.log").display()))
                .arg(format!("--seed-file={}", munge.join("munged.seed").display())),
        ));
        cluster.wait_for("munged's socket", Duration::from_secs(20), || socket.exists());
        cluster.daemons.lock().unwrap().push(spawn("slurmctld", Command::new(which("slurmctld").unwrap()).arg("-D").arg("-c").arg("-f").arg(&cluster.conf)));
        cluster
            .daemons
            .lock()
            .unwrap()
            .push(spawn("slurmd", Command::new(which("slurmd").unwrap()).arg("-D").arg("-N").arg("ogmgenode").arg("-f").arg(&cluster.conf)));
        cluster.wait_for("the node to be idle", Duration::from_secs(60), || {
            let out = cluster.cmd("sinfo").args(["-h", "-o", "%t"]).output();
            out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
        });
        cluster
    }

    /// Polls `ready` every 50 ms; panics with the daemons' logs after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ready() {
            let exited =
                self.daemons.lock().unwrap().iter_mut().find_map(|(name, child)| child.try_wait().ok().flatten().map(|s| format!("{name} exited ({s})")));
            if let Some(exited) = exited {
                panic!("{exited} while waiting for {what}:\n{}", self.logs());
            }
            assert!(start.elapsed() < timeout, "waited {timeout:?} for {what}:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client command (`sbatch`, `squeue`, ...) pointed at this cluster.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(which(program).unwrap_or_else(|| PathBuf::from(program)));
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// `sbatch --parsable args...`: the job id. Panics with sbatch's message when refused.
    pub fn sbatch(&self, args: &[&dyn AsRef<std::ffi::OsStr>], env: &[(&str, &dyn AsRef<std::ffi::OsStr>)]) -> String {
        let mut c = self.cmd("sbatch");
        c.arg("--parsable");
        for a in args {
            c.arg(a);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "sbatch {:?}: {}", c.get_args().collect::<Vec<_>>(), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap().to_owned()
    }

    /// Whether no job of the cluster is pending or running (or squeue no longer answers).
    fn queue_empty(&self) -> bool {
        let out = self.cmd("squeue").args(["-h", "-o", "%i"]).output();
        out.map_or(true, |o| !o.status.success() || o.stdout.iter().all(u8::is_ascii_whitespace))
    }

    /// Waits until no job of the cluster is pending or running.
    pub fn wait_idle(&self, timeout: Duration) {
        self.wait_for("every job to end", timeout, || self.queue_empty());
    }

    /// The state `scontrol show job` gives a job (e.g. `COMPLETED`, `FAILED`, `CANCELLED`).
    pub fn job_state(&self, job: &str) -> String {
        let out = self.cmd("scontrol").args(["show", "job", job]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace().find_map(|w| w.strip_prefix("JobState=")).unwrap_or("UNKNOWN").to_owned()
    }

    /// The daemons' logs, for a failure message.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for f in ["slurmctld.log", "slurmd.log", "munged.stderr", "slurmctld.stderr", "slurmd.stderr"] {
            if let Ok(text) = std::fs::read_to_string(self.dir.join("log").join(f)) {
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                s += &format!("--- {f}\n{}\n", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
        }
        s
    }

    /// Cancels every job, stops the daemons (slurmd, slurmctld, munged: SIGTERM, then SIGKILL after
    /// 10 s) and reaps them. Returns the daemons that had to be killed.
    pub fn stop(&self) -> Vec<&'static str> {
        if self.daemons.lock().unwrap().is_empty() {
            return Vec::new();
        }
        let _ = self.cmd("scancel").args(["--partition", "ogmge"]).output();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && !self.queue_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut killed = Vec::new();
        while let Some((name, mut child)) = self.daemons.lock().unwrap().pop() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    killed.push(name);
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        killed
    }

    /// Whether any process still runs from this cluster's binaries with this cluster's config
    /// (a daemon, or a `slurmstepd` of one of its jobs): the ids found.
    pub fn leftovers(&self) -> Vec<u32> {
        let mut found = Vec::new();
        let dir = self.dir.display().to_string();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let zombie = stat.rsplit(')').next().is_some_and(|s| s.trim_start().starts_with('Z'));
            let ours = String::from_utf8_lossy(&cmdline).contains(&dir) || String::from_utf8_lossy(&environ).contains(&format!("SLURM_CONF={dir}"));
            if ours && !zombie && pid != std::process::id() {
                found.push(pid);
            }
        }
        found
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
