//! The model without DPDK: validation and error codes of every resource, all-or-nothing
//! transactions, replay equal to the live model.

use super::*;
use crate::error::Code;
use vswitch_proto::v1::change::Change as C;

pub(super) fn limits() -> Limits {
    Limits {
        run_dir: std::env::temp_dir().join("vs-model-test"),
        fdb_capacity: 1024,
    }
}

pub(super) fn ch(c: C) -> pb::Change {
    pb::Change { change: Some(c) }
}

pub(super) fn null(name: &str) -> C {
    C::AddInterface(pb::AddInterfaceRequest {
        name: name.into(),
        r#type: "null".into(),
        args: Default::default(),
        vrf: None,
        attachment: None,
    })
}

fn memif(name: &str, socket: &str) -> C {
    C::AddInterface(pb::AddInterfaceRequest {
        name: name.into(),
        r#type: "memif".into(),
        args: [
            ("socket".to_string(), socket.to_string()),
            ("role".to_string(), "server".to_string()),
        ]
        .into(),
        vrf: None,
        attachment: None,
    })
}

fn bridge(name: &str) -> C {
    C::AddBridge(pb::AddBridgeRequest {
        name: name.into(),
        ..Default::default()
    })
}

fn attach(br: &str, iface: &str, vlan: Option<u32>, trunk: &[u32]) -> C {
    C::AttachBridge(pb::AttachBridgeRequest {
        bridge: br.into(),
        iface: iface.into(),
        vlan,
        trunk: trunk.to_vec(),
    })
}

fn fdb(br: &str, mac: &str, iface: &str, vlan: u32) -> C {
    C::AddFdb(pb::AddFdbRequest {
        bridge: br.into(),
        mac: mac.into(),
        iface: iface.into(),
        vlan,
        remote: String::new(),
    })
}

fn xc(a: &str, b: &str) -> C {
    C::AddXconnect(pb::AddXconnectRequest {
        iface_a: a.into(),
        iface_b: b.into(),
    })
}

fn set(name: &str, up: Option<bool>, mtu: Option<u32>) -> C {
    C::SetInterface(pb::SetInterfaceRequest {
        name: name.into(),
        admin_up: up,
        mtu,
        vrf: None,
    })
}

/// Applies each change as its own transaction, which must succeed.
/// `m`'s persisted form, checked: replayed, and read back from the state file's text and
/// replayed, it builds `m` again (the file keeps the order). Returns the changes and the
/// text.
pub(super) fn persisted_round_trip(m: &Model) -> (Vec<C>, String) {
    let changes = m.changes();
    let replay = |changes: Vec<C>| {
        let mut again = Model::new();
        let txn: Vec<pb::Change> = changes.into_iter().map(ch).collect();
        again.replay(&txn, &limits()).unwrap();
        again
    };
    assert_eq!(replay(changes.clone()), *m);
    let snap = crate::state::Snapshot {
        seq: 1,
        changes: changes.clone(),
    };
    let text = crate::state::encode(&snap).unwrap();
    let back = crate::state::decode(&text).unwrap();
    assert_eq!(back, snap, "the state file keeps the order");
    assert_eq!(replay(back.changes), *m);
    (changes, text)
}

fn build(changes: Vec<C>) -> Model {
    let mut m = Model::new();
    for c in changes {
        let desc = format!("{c:?}");
        m.replay(&[ch(c)], &limits())
            .unwrap_or_else(|e| panic!("{desc}: {e}"));
    }
    m
}

/// A switch with two interfaces in a bridge (b0: untagged a; trunk t of 10, 20) and a
/// cross-connect x1-x2.
fn base() -> Model {
    build(vec![
        null("a"),
        null("t"),
        null("x1"),
        null("x2"),
        null("spare"),
        bridge("br0"),
        attach("br0", "a", None, &[]),
        attach("br0", "t", None, &[10, 20]),
        xc("x1", "x2"),
        fdb("br0", "02:00:00:00:00:01", "a", 0),
        fdb("br0", "02:00:00:00:00:02", "t", 10),
    ])
}

/// `c` on the base model is refused with `code`, a message containing `text`, and the
/// model is unchanged.
fn refused(c: C, code: Code, text: &str) {
    let m = base();
    let before = m.clone();
    let desc = format!("{c:?}");
    match m.stage(&[ch(c)], &limits()) {
        Ok(_) => panic!("{desc} was accepted"),
        Err(e) => {
            assert_eq!(e.code, code, "{desc}: {e}");
            assert!(e.message.contains(text), "{desc}: {e} lacks {text:?}");
        }
    }
    assert_eq!(m, before);
}

#[test]
fn interfaces_are_validated() {
    refused(null("a"), Code::Exists, "interface \"a\" exists already");
    refused(null(""), Code::Invalid, "name");
    refused(null("bad name"), Code::Invalid, "name");
    refused(
        C::AddInterface(pb::AddInterfaceRequest {
            name: "q".into(),
            r#type: "warp".into(),
            args: Default::default(),
            vrf: None,
            attachment: None,
        }),
        Code::Invalid,
        "type \"warp\" is unknown",
    );
    refused(
        C::AddInterface(pb::AddInterfaceRequest {
            name: "q".into(),
            r#type: "null".into(),
            args: [("colour".to_string(), "red".to_string())].into(),
            vrf: None,
            attachment: None,
        }),
        Code::Invalid,
        "key \"colour\" is not known",
    );
    refused(
        C::DeleteInterface(pb::DeleteInterfaceRequest {
            name: "nope".into(),
        }),
        Code::NotFound,
        "interface \"nope\" not found",
    );
    refused(set("nope", Some(true), None), Code::NotFound, "not found");
    refused(set("a", None, Some(10)), Code::Invalid, "mtu");
    refused(set("a", None, Some(70_000)), Code::Invalid, "mtu");
}

fn null_mtu(name: &str, mtu: &str) -> C {
    C::AddInterface(pb::AddInterfaceRequest {
        name: name.into(),
        r#type: "null".into(),
        args: [("mtu".to_string(), mtu.to_string())].into(),
        vrf: None,
        attachment: None,
    })
}

/// MTUs past the jumbo buffers are refused at add and set; a set needing a larger class of
/// buffers than the port was opened with is refused, one within its class is not.
#[test]
fn mtus_must_fit_the_buffers() {
    refused(null_mtu("q", "9601"), Code::Invalid, "from 68 to 9600");
    refused(null_mtu("q", "65535"), Code::Invalid, "jumbo buffers");
    refused(set("a", None, Some(9601)), Code::Invalid, "from 68 to 9600");
    // a was added without mtu= (1500): standard buffers.
    refused(
        set("a", None, Some(9000)),
        Code::Invalid,
        "its port has standard buffers, which carry MTUs up to 1960",
    );
    refused(
        set("a", None, Some(1961)),
        Code::Invalid,
        "delete the interface and add it again with mtu=1961",
    );
    let m = build(vec![null_mtu("j", "9000"), null("s")]);
    for ok in [set("s", None, Some(1960)), set("j", None, Some(9600))] {
        let desc = format!("{ok:?}");
        m.stage(&[ch(ok)], &limits())
            .unwrap_or_else(|e| panic!("{desc}: {e}"));
    }
    // Down to a standard MTU and back up in one transaction: the class follows the MTU
    // configured, so the second step is refused (as it would be after a restart).
    let e = m
        .stage(
            &[
                ch(set("j", None, Some(1500))),
                ch(set("j", None, Some(9000))),
            ],
            &limits(),
        )
        .unwrap_err();
    assert_eq!(e.code, Code::Invalid, "{e}");
    assert!(e.message.contains("standard buffers"), "{e}");
}

#[test]
fn two_interfaces_cannot_share_a_socket() {
    let m = build(vec![memif("m1", "m.sock")]);
    let e = m
        .stage(&[ch(memif("m2", "m.sock"))], &limits())
        .unwrap_err();
    assert_eq!(e.code, Code::Conflict, "{e}");
    assert!(e.message.contains("already uses socket"), "{e}");
}

#[test]
fn cross_connects_are_validated() {
    refused(xc("a", "spare"), Code::Conflict, "member of bridge \"br0\"");
    refused(xc("x1", "spare"), Code::Conflict, "already cross-connected");
    refused(xc("spare", "spare"), Code::Invalid, "to itself");
    refused(xc("spare", "nope"), Code::NotFound, "\"nope\" not found");
    refused(
        C::DeleteXconnect(pb::DeleteXconnectRequest {
            iface_a: "spare".into(),
        }),
        Code::NotFound,
        "not cross-connected",
    );
}

#[test]
fn bridges_are_validated() {
    refused(bridge("br0"), Code::Exists, "exists already");
    refused(bridge("a b"), Code::Invalid, "bridge name");
    for (age, ok) in [(0, false), (1, true), (1_000_001, false)] {
        let c = C::AddBridge(pb::AddBridgeRequest {
            name: "b2".into(),
            age: Some(age),
            ..Default::default()
        });
        if ok {
            base().stage(&[ch(c)], &limits()).unwrap();
        } else {
            refused(c, Code::Invalid, "age must be from 1 to 1000000");
        }
    }
    refused(
        C::AddBridge(pb::AddBridgeRequest {
            name: "b2".into(),
            learn_limit: Some(1025),
            ..Default::default()
        }),
        Code::Invalid,
        "learn-limit must be from 1 to 1024",
    );
    refused(
        attach("br0", "a", None, &[]),
        Code::Conflict,
        "already a member",
    );
    refused(
        attach("br0", "x1", None, &[]),
        Code::Conflict,
        "cross-connected",
    );
    refused(
        attach("br0", "spare", Some(10), &[20]),
        Code::Invalid,
        "not both",
    );
    refused(
        attach("br0", "spare", Some(0), &[]),
        Code::Invalid,
        "1 to 4094",
    );
    refused(
        attach("br0", "spare", Some(4095), &[]),
        Code::Invalid,
        "1 to 4094",
    );
    refused(
        attach("br0", "spare", None, &[5, 5]),
        Code::Invalid,
        "twice",
    );
    refused(attach("nobr", "spare", None, &[]), Code::NotFound, "bridge");
    refused(
        C::DetachBridge(pb::DetachBridgeRequest {
            bridge: "br0".into(),
            iface: "spare".into(),
        }),
        Code::NotFound,
        "not a member",
    );
}

#[test]
fn static_macs_are_validated() {
    let mac = "02:00:00:00:00:09";
    for (c, code, text) in [
        (fdb("br0", mac, "spare", 0), Code::Conflict, "not a member"),
        (fdb("br0", "zz", "a", 0), Code::Invalid, "mac"),
        (
            fdb("br0", mac, "a", 10),
            Code::Invalid,
            "does not carry VLAN 10",
        ),
        (
            fdb("br0", mac, "t", 30),
            Code::Invalid,
            "does not carry VLAN 30",
        ),
        (fdb("br0", mac, "t", 5000), Code::Invalid, "1 to 4094"),
        (
            fdb("nobr", mac, "a", 0),
            Code::NotFound,
            "bridge \"nobr\" not found",
        ),
        (
            C::FlushFdb(pb::FlushFdbRequest {
                bridge: "br0".into(),
                iface: "spare".into(),
            }),
            Code::NotFound,
            "not a member",
        ),
        (
            C::AddFdb(pb::AddFdbRequest::default()),
            Code::Invalid,
            "bridge",
        ),
    ] {
        refused(c, code, text);
    }
}

#[test]
fn empty_change_is_refused() {
    let e = base()
        .stage(&[pb::Change { change: None }], &limits())
        .unwrap_err();
    assert_eq!(e.code, Code::Invalid);
}

/// Every prefix of a good batch followed by a bad change fails at that change, says so,
/// and leaves the model as it was.
#[test]
fn a_batch_failing_at_change_k_of_n_changes_nothing() {
    let good = vec![
        null("n1"),
        bridge("br1"),
        attach("br1", "n1", Some(7), &[]),
        fdb("br1", "02:00:00:00:01:01", "n1", 7),
        set("n1", Some(false), Some(1400)),
        C::DeleteInterface(pb::DeleteInterfaceRequest { name: "x1".into() }),
        C::DeleteBridge(pb::DeleteBridgeRequest { name: "br0".into() }),
    ];
    let m = base();
    let before = m.clone();
    for k in 0..=good.len() {
        let mut batch: Vec<pb::Change> = good[..k].iter().cloned().map(ch).collect();
        batch.push(ch(null("a")));
        batch.extend(good[k..].iter().cloned().map(ch));
        let e = m.stage(&batch, &limits()).unwrap_err();
        let want = format!("change {} of {} (add_interface): ", k + 1, batch.len());
        assert!(e.message.starts_with(&want), "{e}");
        assert!(e.message.ends_with("; nothing was applied"), "{e}");
        assert_eq!(e.code, Code::Exists);
        assert_eq!(
            m, before,
            "the model changed after a refused batch (k = {k})"
        );
    }
    // The good batch alone goes through, and its diff says what to do.
    let s = m
        .stage(&good.into_iter().map(ch).collect::<Vec<_>>(), &limits())
        .unwrap();
    assert!(s.model.iface("n1").is_ok() && s.model.iface("x1").is_err());
    assert!(s.model.bridge("br0").is_err());
    assert_eq!(s.model.statics_len(), 1, "br0's entries go with it");
    assert!(s.diff.plan && s.diff.persistent);
    assert!(s.diff.ports.contains(&PortOp::Close { name: "x1".into() }));
    assert!(matches!(&s.diff.ports[0], PortOp::Open { index: 0, name, .. } if name == "n1"));
    assert_eq!(m, before, "staging changed the model it copied");
    let x2 = s.model.iface("x2").unwrap();
    assert_eq!(x2.xconnect, None, "x2 left its cross-connect with x1");
}

#[test]
fn deleting_a_member_drops_its_static_entries_and_membership() {
    let m = base();
    let s = m
        .stage(
            &[ch(C::DeleteInterface(pb::DeleteInterfaceRequest {
                name: "t".into(),
            }))],
            &limits(),
        )
        .unwrap();
    let br = s.model.bridge("br0").unwrap();
    assert!(!br.members.contains_key("t"));
    assert_eq!(s.model.statics_len(), 1);
    let gone = (br.id, 10, [2, 0, 0, 0, 0, 2]);
    assert!(
        s.diff.statics.contains_key(&gone),
        "the MAC table must lose it"
    );
    assert!(s.diff.bridges.contains("br0"), "the learner must forget t");
}

#[test]
fn flushes_and_learned_deletes_change_no_desired_state() {
    let m = base();
    let s = m
        .stage(
            &[
                ch(C::FlushFdb(pb::FlushFdbRequest {
                    bridge: "br0".into(),
                    iface: "a".into(),
                })),
                ch(C::DeleteFdb(pb::DeleteFdbRequest {
                    bridge: "br0".into(),
                    mac: "02:00:00:00:00:77".into(),
                    vlan: 0,
                })),
            ],
            &limits(),
        )
        .unwrap();
    assert_eq!(s.model, m);
    assert_eq!(s.diff.flushes.len(), 1);
    assert_eq!(s.diff.learned_removes.len(), 1);
    assert!(!s.diff.plan);
}

/// A bridge id freed in a transaction is not reused in it (the MAC table still holds its
/// entries until the transaction is carried out).
#[test]
fn a_bridge_id_is_not_reused_within_a_transaction() {
    let m = base();
    let id = m.bridge("br0").unwrap().id;
    let s = m
        .stage(
            &[
                ch(C::DeleteBridge(pb::DeleteBridgeRequest {
                    name: "br0".into(),
                })),
                ch(bridge("br9")),
            ],
            &limits(),
        )
        .unwrap();
    assert_ne!(s.model.bridge("br9").unwrap().id, id);
}

/// A small deterministic generator (xorshift), for random transactions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn random_change(r: &mut Rng) -> C {
    let ifs = ["i0", "i1", "i2", "i3", "i4"];
    let brs = ["b0", "b1", "b2"];
    let i = r.pick(&ifs).to_string();
    let b = r.pick(&brs).to_string();
    match r.next() % 11 {
        0 | 1 => null(&i),
        2 => C::DeleteInterface(pb::DeleteInterfaceRequest { name: i }),
        3 => set(
            &i,
            Some(r.next() % 2 == 0),
            Some(1500 + (r.next() % 3) as u32 * 1000),
        ),
        4 => xc(&i, r.pick(&ifs)),
        5 => C::DeleteXconnect(pb::DeleteXconnectRequest { iface_a: i }),
        6 => bridge(&b),
        7 => C::DeleteBridge(pb::DeleteBridgeRequest { name: b }),
        8 => match r.next() % 3 {
            0 => attach(&b, &i, None, &[]),
            1 => attach(&b, &i, Some(10), &[]),
            _ => attach(&b, &i, None, &[10, 20]),
        },
        9 => C::DetachBridge(pb::DetachBridgeRequest {
            bridge: b,
            iface: i,
        }),
        _ => fdb(
            &b,
            &format!("02:00:00:00:00:{:02x}", r.next() % 8),
            &i,
            [0, 10, 20][(r.next() % 3) as usize],
        ),
    }
}

/// Random transactions, some refused: the journal of those accepted, replayed from empty,
/// is the live model (bridge ids included), and the snapshot (the model's changes)
/// replayed from empty is the same desired state.
#[test]
fn replay_of_the_journal_and_of_the_snapshot_is_the_live_model() {
    for seed in 1..=40u64 {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut live = Model::new();
        let mut journal: Vec<Vec<pb::Change>> = Vec::new();
        let mut accepted = 0;
        for _ in 0..200 {
            let n = if r.next() % 3 == 0 {
                2 + (r.next() % 3) as usize
            } else {
                1
            };
            let txn: Vec<pb::Change> = (0..n).map(|_| ch(random_change(&mut r))).collect();
            let before = live.clone();
            match live.stage(&txn, &limits()) {
                Ok(s) => {
                    live = s.model;
                    if s.diff.persistent {
                        journal.push(txn);
                    }
                    accepted += 1;
                }
                Err(_) => assert_eq!(live, before),
            }
        }
        assert!(accepted > 20, "seed {seed}: only {accepted} accepted");
        let mut replayed = Model::new();
        for txn in &journal {
            replayed.replay(txn, &limits()).unwrap();
        }
        assert_eq!(replayed, live, "seed {seed}: journal replay differs");
        let mut restored = Model::new();
        for c in live.changes() {
            restored.replay(&[ch(c)], &limits()).unwrap();
        }
        assert_eq!(restored.changes(), live.changes(), "seed {seed}");
    }
}

/// The snapshot's JSON form comes back as the same changes.
#[test]
fn the_snapshot_round_trips_through_json() {
    let m = build(vec![
        null("a"),
        null("b"),
        set("b", Some(false), None),
        null("c"),
        null("d"),
        xc("c", "d"),
        bridge("br0"),
        attach("br0", "a", None, &[10, 20]),
        attach("br0", "b", Some(30), &[]),
        fdb("br0", "02:00:00:00:00:01", "a", 20),
    ]);
    let snap = crate::state::Snapshot {
        seq: 7,
        changes: m.changes(),
    };
    let text = crate::state::encode(&snap).unwrap();
    let back = crate::state::decode(&text).unwrap();
    assert_eq!(back.seq, 7);
    // Grouped by section (replay order), the same changes: the same model, the same text.
    assert_eq!(crate::state::encode(&back).unwrap(), text);
    let mut restored = Model::new();
    for c in back.changes {
        restored.replay(&[ch(c)], &limits()).unwrap();
    }
    assert_eq!(restored, m, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["interfaces"][1]["name"], "b");
    assert_eq!(v["interface_settings"][0]["admin_up"], false);
    assert_eq!(v["static_macs"][0]["vlan"], 20);
}

/// An interface added and deleted in one transaction: its port is opened (as it was
/// added) and closed again, and the model ends without it.
#[test]
fn an_interface_added_and_deleted_in_one_transaction() {
    let m = base();
    let s = m
        .stage(
            &[
                ch(null("tmp")),
                ch(C::DeleteInterface(pb::DeleteInterfaceRequest {
                    name: "tmp".into(),
                })),
            ],
            &limits(),
        )
        .unwrap();
    assert_eq!(s.model, m);
    assert!(
        matches!(&s.diff.ports[..], [PortOp::Open { spec, .. }, PortOp::Close { name }]
        if spec.type_name == "null" && name == "tmp")
    );
}

fn attached(name: &str, container: &str, ifname: &str, netns: &str) -> C {
    C::AddInterface(pb::AddInterfaceRequest {
        name: name.into(),
        r#type: "null".into(),
        args: Default::default(),
        vrf: None,
        attachment: Some(pb::Attachment {
            container_id: container.into(),
            ifname: ifname.into(),
            netns: netns.into(),
            network: "pods".into(),
        }),
    })
}

/// A container's attachment is validated, unique per (container, ifname, network), kept
/// with the interface, and persisted with it.
#[test]
fn attachments_are_validated_unique_and_persisted() {
    let m = build(vec![attached("p1", "c0ffee", "eth0", "/run/netns/p1")]);
    let a = m.ifaces["p1"].attachment.as_ref().unwrap();
    assert_eq!(
        (
            a.container_id.as_str(),
            a.ifname.as_str(),
            a.network.as_str()
        ),
        ("c0ffee", "eth0", "pods")
    );
    let stage = |c: C| m.stage(&[ch(c)], &limits()).map(|_| ()).unwrap_err();
    let e = stage(attached("p2", "c0ffee", "eth0", ""));
    assert_eq!(e.code, Code::Exists, "{e}");
    assert!(e.message.contains("as interface \"p1\""), "{e}");
    for (container, ifname, netns, what) in [
        ("", "eth0", "", "container_id"),
        ("-abc", "eth0", "", "container_id"),
        ("a b", "eth0", "", "container_id"),
        ("c1", "", "", "ifname"),
        ("c1", "a-very-long-ifname", "", "ifname"),
        ("c1", "eth/0", "", "ifname"),
        ("c1", "eth0", "run/netns/x", "netns"),
    ] {
        let e = stage(attached("p2", container, ifname, netns));
        assert_eq!(e.code, Code::Invalid, "{e}");
        assert!(e.message.contains(what), "{what}: {e}");
    }
    // Another interface of the same container, or the same name on another container.
    m.stage(&[ch(attached("p2", "c0ffee", "net1", ""))], &limits())
        .unwrap();
    m.stage(&[ch(attached("p2", "beef", "eth0", ""))], &limits())
        .unwrap();
    let snap = crate::state::Snapshot {
        seq: 1,
        changes: m.changes(),
    };
    let text = crate::state::encode(&snap).unwrap();
    let mut restored = Model::new();
    for c in crate::state::decode(&text).unwrap().changes {
        restored.replay(&[ch(c)], &limits()).unwrap();
    }
    assert_eq!(restored, m, "{text}");
}
