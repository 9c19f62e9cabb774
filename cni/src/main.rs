//! vswitch-cni: the CNI plugin (spec 1.1; versions 0.4.0 to 1.1.0) that attaches containers
//! to vswitchd. A runtime runs it with CNI_COMMAND and the other CNI_* variables set and
//! the network configuration on stdin; it answers a result, or an error, as JSON on stdout.
//!
//! Where things are: conf.rs (environment and config), ops.rs (the verbs), pod.rs (the
//! veth pair and the pod's addresses and routes, over rtnetlink), ipam.rs (delegation),
//! result.rs (results in each version), switch.rs (vswitchd's API).

mod conf;
mod error;
mod ipam;
mod ops;
mod pod;
mod result;
mod switch;
mod version;

use std::io::{Read, Write};

use conf::{Command, Env, NetConf};
use error::{code, CniError, CniResult};

const USAGE: &str = "\
vswitch-cni: the CNI plugin of vswitch (CNI spec 1.1; speaks 0.4.0, 1.0.0, 1.1.0)

A container runtime runs it: CNI_COMMAND (ADD, DEL, CHECK, STATUS, GC or VERSION),
CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH in the environment, the
network configuration on stdin:

  {\"cniVersion\": \"1.0.0\", \"name\": \"pods\", \"type\": \"vswitch-cni\",
   \"mode\": \"bridge\" | \"routed\", \"bridge\": \"br0\", \"vlan\": 10, \"mtu\": 1500,
   \"interface\": \"veth\" | \"tap\" | \"memif\" | \"vhost-user\",
   \"socketDir\": \"/run/vswitch/cni\", \"socket\": \"/run/vswitch/vswitchd.sock\",
   \"ipam\": {\"type\": \"host-local\", ...}}

The result (or an error with its code) is printed on stdout as JSON.

  --help       this text
  --version    the plugin's version
";

fn run(command: Command, stdin: &[u8]) -> CniResult<Option<serde_json::Value>> {
    let get = |k: &str| std::env::var(k).ok();
    if command == Command::Version {
        // The request's cniVersion does not matter to the answer.
        return Ok(Some(serde_json::json!({
            "cniVersion": version::NEWEST,
            "supportedVersions": version::SUPPORTED,
        })));
    }
    let conf = NetConf::parse(stdin, command)?;
    let env = Env::read(command, get)?;
    match command {
        Command::Add => ops::add(&conf, &env).map(|r| Some(r.encode(&conf.version_text))),
        Command::Del => ops::del(&conf, &env).map(|()| None),
        Command::Check => ops::check(&conf, &env).map(|()| None),
        Command::Gc => ops::gc(&conf, &env).map(|()| None),
        Command::Status => ops::status(&conf, &env).map(|()| None),
        Command::Version => unreachable!("answered above"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--help" | "-h") => {
            print!("{USAGE}");
            return;
        }
        Some("--version" | "-V") => {
            println!("vswitch-cni {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Some(other) => {
            eprintln!("vswitch-cni: unknown argument {other:?} (see --help)");
            std::process::exit(2);
        }
        None => {}
    }
    let mut stdin = Vec::new();
    let read = std::io::stdin().take(16 << 20).read_to_end(&mut stdin);
    let command = Command::parse(&std::env::var("CNI_COMMAND").unwrap_or_default());
    let answer = match (read, command) {
        (Err(e), _) => Err(CniError::new(code::IO, format!("cannot read stdin: {e}"))),
        (_, Err(e)) => Err(e),
        (Ok(_), Ok(c)) => run(c, &stdin),
    };
    let mut out = std::io::stdout().lock();
    match answer {
        Ok(Some(v)) => {
            let _ = writeln!(out, "{v}");
        }
        Ok(None) => {}
        Err(e) => {
            let _ = writeln!(out, "{}", e.to_json(&conf::version_of(&stdin)));
            eprintln!("vswitch-cni: {e}");
            let _ = out.flush();
            std::process::exit(1);
        }
    }
}
