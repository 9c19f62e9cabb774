//! IPAM delegation: the plugin named in `ipam.type` is found on CNI_PATH, asked which CNI
//! versions it speaks (VERSION), and called at the newest version both speak, with the
//! network config on stdin and the caller's environment, as the spec's delegation says.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use serde_json::Value;

use crate::conf::{Env, NetConf};
use crate::error::{code, invalid, CniError, CniResult};
use crate::result::CniOutput;
use crate::version::{self, Version};

/// An IPAM plugin, found and asked its versions.
pub struct Ipam {
    pub name: String,
    pub path: PathBuf,
    /// The version calls are made at.
    pub version: Version,
}

/// What a delegate printed, as an error of ours: its own code and message, named.
fn delegate_error(name: &str, stdout: &[u8], stderr: &[u8], status: &str) -> CniError {
    if let Ok(v) = serde_json::from_slice::<Value>(stdout) {
        if let (Some(c), Some(m)) = (v.get("code").and_then(Value::as_u64), v.get("msg")) {
            let details = v.get("details").and_then(Value::as_str).unwrap_or_default();
            return CniError::new(
                c as u32,
                format!("IPAM plugin {name}: {}", m.as_str().unwrap_or_default()),
            )
            .with_details(details);
        }
    }
    let text = String::from_utf8_lossy(stderr);
    CniError::new(code::IO, format!("IPAM plugin {name} failed ({status})"))
        .with_details(text.trim().chars().take(2000).collect::<String>())
}

/// What identifies a plugin file's contents for the cache: size, modification time and
/// inode (a package upgrade or a copy over it changes one of them).
fn file_key(path: &Path) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{} {} {} {}",
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ino()
    ))
}

/// The cache file of plugin `path`: named by a hash of its path.
fn cache_file(cache: &Path, path: &Path) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    cache.join(format!("{h:016x}"))
}

/// The versions cached for `path` if its key still matches: line 1 the key, line 2 the
/// versions separated by spaces. Anything else (missing, stale, damaged) is a miss.
fn read_cache(cache: &Path, path: &Path, key: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(cache_file(cache, path)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != key {
        return None;
    }
    let versions: Vec<String> = lines.next()?.split(' ').map(str::to_owned).collect();
    versions
        .iter()
        .all(|v| Version::parse(v).is_some())
        .then_some(versions)
}

/// Keeps a plugin's versions (best effort: written beside and renamed, so a reader sees a
/// whole file or none).
fn write_cache(cache: &Path, path: &Path, key: &str, versions: &[String]) {
    if versions.is_empty() || std::fs::create_dir_all(cache).is_err() {
        return;
    }
    let file = cache_file(cache, path);
    let tmp = file.with_extension(format!("{}.tmp", std::process::id()));
    let body = format!("{key}\n{}\n", versions.join(" "));
    if std::fs::write(&tmp, body).is_ok() && std::fs::rename(&tmp, &file).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

impl Ipam {
    /// Finds `name` on CNI_PATH and asks it its versions (or reads them from `cache`, a
    /// directory where the answer is kept per plugin file: one exec less per call).
    pub fn find(name: &str, env: &Env, cache: &Path) -> CniResult<Ipam> {
        let path = env
            .path
            .iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                invalid(format!(
                    "IPAM plugin {name:?} is not in CNI_PATH ({})",
                    env.path
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":")
                ))
            })?;
        let mut ipam = Ipam {
            name: name.to_owned(),
            path,
            version: Version(0, 0, 0),
        };
        let key = file_key(&ipam.path);
        let cached = key.as_ref().and_then(|k| read_cache(cache, &ipam.path, k));
        let theirs = match cached {
            Some(v) => v,
            None => {
                let out = ipam.run(
                    "VERSION",
                    env,
                    &serde_json::json!({"cniVersion": version::NEWEST}),
                )?;
                let theirs: Vec<String> = out
                    .get("supportedVersions")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(k) = &key {
                    write_cache(cache, &ipam.path, k, &theirs);
                }
                theirs
            }
        };
        ipam.version = version::common(&theirs).ok_or_else(|| {
            CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!(
                    "IPAM plugin {name} speaks {}, none of {}",
                    theirs.join(", "),
                    version::SUPPORTED.join(", ")
                ),
            )
        })?;
        Ok(ipam)
    }

    /// Runs the plugin: `command` with `stdin`, the caller's environment otherwise (the
    /// attachment's container id and ifname where given). Its stdout, parsed (Null if
    /// empty).
    fn run(&self, command: &str, env: &Env, stdin: &Value) -> CniResult<Value> {
        let mut p = Process::new(&self.path);
        p.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &env.container_id)
            .env("CNI_NETNS", &env.netns)
            .env("CNI_IFNAME", &env.ifname)
            .env("CNI_ARGS", &env.args)
            .env(
                "CNI_PATH",
                std::env::join_paths(&env.path).unwrap_or_default(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = p.spawn().map_err(|e| {
            CniError::new(
                code::IO,
                format!(
                    "IPAM plugin {}: cannot run {}: {e}",
                    self.name,
                    self.path.display()
                ),
            )
        })?;
        let input = serde_json::to_vec(stdin).unwrap_or_default();
        if let Some(mut w) = child.stdin.take() {
            // A plugin that exits without reading is answered by its output below.
            let _ = w.write_all(&input);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| CniError::new(code::IO, format!("IPAM plugin {}: {e}", self.name)))?;
        if !out.status.success() {
            return Err(delegate_error(
                &self.name,
                &out.stdout,
                &out.stderr,
                &out.status.to_string(),
            ));
        }
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            CniError::new(
                code::DECODE,
                format!("IPAM plugin {}'s output is not JSON", self.name),
            )
            .with_details(e.to_string())
        })
    }

    /// The config as the plugin gets it: ours, at its version, with `prevResult` (if any)
    /// written in that version.
    fn input(&self, conf: &NetConf, prev: Option<&CniOutput>) -> Value {
        let mut v = conf.raw.clone();
        v["cniVersion"] = self.version.to_string().into();
        if let Some(o) = v.as_object_mut() {
            o.remove("prevResult");
        }
        if let Some(p) = prev {
            v["prevResult"] = p.encode(&self.version.to_string());
        }
        v
    }

    /// ADD: the addresses, routes and DNS of the attachment.
    pub fn add(&self, conf: &NetConf, env: &Env) -> CniResult<CniOutput> {
        let out = self.run("ADD", env, &self.input(conf, None))?;
        CniOutput::from_value(&out)
    }

    /// DEL: releases the attachment's lease (idempotent in every standard IPAM plugin).
    pub fn del(&self, conf: &NetConf, env: &Env) -> CniResult<()> {
        self.run("DEL", env, &self.input(conf, None)).map(|_| ())
    }

    /// CHECK against the result ADD gave (skipped before 1.0.0's CHECK... 0.4.0 has it).
    pub fn check(&self, conf: &NetConf, env: &Env, prev: &CniOutput) -> CniResult<()> {
        self.run("CHECK", env, &self.input(conf, Some(prev)))
            .map(|_| ())
    }

    /// GC and STATUS exist from 1.1.0; an older plugin has neither.
    pub fn speaks_1_1(&self) -> bool {
        self.version.has_1_1()
    }

    pub fn gc(&self, conf: &NetConf, env: &Env) -> CniResult<()> {
        self.run("GC", env, &self.input(conf, None)).map(|_| ())
    }

    pub fn status(&self, conf: &NetConf, env: &Env) -> CniResult<()> {
        self.run("STATUS", env, &self.input(conf, None)).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_cached_per_plugin_file_and_dropped_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("vs-cni-ipam-{}", std::process::id()));
        let plugin = dir.join("plugin");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&plugin, "#!/bin/sh\n").unwrap();
        let cache = dir.join("cache");
        let key = file_key(&plugin).unwrap();
        assert_eq!(read_cache(&cache, &plugin, &key), None);
        let v = vec!["0.4.0".to_string(), "1.0.0".to_string()];
        write_cache(&cache, &plugin, &key, &v);
        assert_eq!(read_cache(&cache, &plugin, &key), Some(v));
        std::fs::write(&plugin, "#!/bin/sh\nexit 0\n").unwrap();
        let changed = file_key(&plugin).unwrap();
        assert_ne!(changed, key);
        assert_eq!(read_cache(&cache, &plugin, &changed), None);
        std::fs::write(cache_file(&cache, &plugin), format!("{changed}\n1.0 x\n")).unwrap();
        assert_eq!(
            read_cache(&cache, &plugin, &changed),
            None,
            "a damaged entry is a miss"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
