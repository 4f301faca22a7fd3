//! Property tests on the parsers that read attacker-controlled bytes: DNS payloads (any process
//! can send anything to port 53) and cgroup paths (a privileged workload can create cgroups
//! with any name).

use palisade_sensor::attrib::cgroup::{Runtime, parse_cgroup_path};
use palisade_sensor::attrib::decode::{parse_dns_payload, parse_dns_question};
use proptest::prelude::*;

fn encode(labels: &[String], qtype: u16) -> Vec<u8> {
    let mut msg = vec![0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in labels {
        msg.push(label.len() as u8);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.push(0);
    msg.extend_from_slice(&qtype.to_be_bytes());
    msg.extend_from_slice(&[0, 1]);
    msg
}

fn safe_name(name: &str) {
    assert!(name.len() <= 255 * 4, "bounded: {}", name.len());
    assert!(
        name.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b.is_ascii_uppercase()),
        "printable lower-case only: {name:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn dns_arbitrary_bytes_never_panic_and_stay_printable(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(q) = parse_dns_payload(&bytes) {
            safe_name(&q.name);
        }
    }

    #[test]
    fn dns_headers_with_hostile_names(
        labels in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..70), 0..8),
        pointer in any::<u16>(),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        // A valid header followed by raw label bytes, a pointer and junk: exercises every branch.
        let mut msg = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in &labels {
            msg.push(label.len() as u8);
            msg.extend_from_slice(label);
        }
        msg.extend_from_slice(&(pointer | 0xc000).to_be_bytes());
        msg.extend_from_slice(&tail);
        if let Ok(q) = parse_dns_question(&msg) {
            safe_name(&q.name);
        }
    }

    #[test]
    fn dns_round_trip_udp_and_tcp(
        labels in proptest::collection::vec("[a-zA-Z0-9_-]{1,40}", 1..6),
        qtype in any::<u16>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    ) {
        let msg = encode(&labels, qtype);
        let want = labels.join(".").to_ascii_lowercase();
        let q = parse_dns_question(&msg).expect("valid message");
        prop_assert_eq!(&q.name, &want);
        prop_assert_eq!(q.qtype, qtype);
        let mut tcp = (msg.len() as u16).to_be_bytes().to_vec();
        tcp.extend_from_slice(&msg);
        let q = parse_dns_payload(&tcp).expect("tcp framing");
        prop_assert_eq!(&q.name, &want);
        // Corrupted copies never panic and never produce unsafe names.
        let mut bad = msg.clone();
        for (at, byte) in flips {
            let len = bad.len();
            bad[at % len] = byte;
        }
        if let Ok(q) = parse_dns_payload(&bad) {
            safe_name(&q.name);
        }
    }

    #[test]
    fn cgroup_arbitrary_paths_never_panic(path in "\\PC{0,300}") {
        let got = parse_cgroup_path(&path);
        if let Some((_, id)) = got.container {
            prop_assert_eq!(id.len(), 64);
            prop_assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
        if let Some(uid) = got.pod_uid {
            prop_assert_eq!(uid.len(), 36);
        }
    }

    #[test]
    fn cgroup_layouts_found_under_any_prefix(
        prefix in proptest::collection::vec("[a-z][a-z0-9_.]{0,12}", 0..4),
        id in "[0-9a-f]{64}",
        uid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        layout in 0usize..5,
        suffix in proptest::option::of("[a-z]{1,8}"),
    ) {
        let uid_ = uid.replace('-', "_");
        let (tail, runtime, with_pod) = match layout {
            0 => (format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{id}.scope"), Runtime::Containerd, true),
            1 => (format!("kubepods/guaranteed/pod{uid}/{id}"), Runtime::Containerd, true),
            2 => (format!("kubepods.slice/kubepods-pod{uid_}.slice/crio-{id}.scope"), Runtime::CriO, true),
            3 => (format!("system.slice/docker-{id}.scope"), Runtime::Docker, false),
            _ => (format!("machine.slice/libpod-{id}.scope"), Runtime::Podman, false),
        };
        let mut path = String::new();
        for p in &prefix {
            path.push('/');
            path.push_str(p);
        }
        path.push('/');
        path.push_str(&tail);
        // A sub-cgroup inside the container (systemd in a container, or a runtime's `init`).
        if let Some(s) = &suffix {
            path.push('/');
            path.push_str(s);
        }
        let got = parse_cgroup_path(&path);
        prop_assert_eq!(got.container, Some((runtime, id.clone())));
        prop_assert_eq!(got.pod_uid, with_pod.then(|| uid.clone()));
        // One hex digit fewer, or a non-hex digit: not a container.
        let short = path.replace(&id, &id[1..]);
        prop_assert_eq!(parse_cgroup_path(&short).container, None);
        let mut bad = id.clone();
        bad.replace_range(10..11, "g");
        prop_assert_eq!(parse_cgroup_path(&path.replace(&id, &bad)).container, None);
    }
}
