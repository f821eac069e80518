//! Replays every file of the fuzz corpora and regression sets through the fuzz properties on
//! the stable toolchain, so CI checks what the fuzzers found without running them.

use std::path::Path;

fn replay(dir: &str, check: fn(&[u8])) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    entries.sort();
    for p in entries {
        let data = std::fs::read(&p).unwrap();
        let r = std::panic::catch_unwind(|| check(&data));
        assert!(r.is_ok(), "{} fails its fuzz property", p.display());
        n += 1;
    }
    n
}

#[test]
fn parse_in_corpus_and_regressions_hold() {
    let seeds = replay("corpus/parse-in", opte_fuzz::check_parse_in);
    assert!(
        seeds >= 10,
        "the parse-in seed corpus has only {seeds} files"
    );
    replay("regressions/parse-in", opte_fuzz::check_parse_in);
}

#[test]
fn parse_out_corpus_and_regressions_hold() {
    let seeds = replay("corpus/parse-out", opte_fuzz::check_parse_out);
    assert!(
        seeds >= 20,
        "the parse-out seed corpus has only {seeds} files"
    );
    replay("regressions/parse-out", opte_fuzz::check_parse_out);
}

#[test]
fn control_corpus_and_regressions_hold() {
    let seeds = replay("corpus/control", opte_fuzz::check_control);
    assert!(
        seeds >= 10,
        "the control seed corpus has only {seeds} files"
    );
    replay("regressions/control", opte_fuzz::check_control);
}

#[test]
fn port_corpus_and_regressions_hold() {
    let seeds = replay("corpus/port", opte_fuzz::check_port);
    assert!(seeds >= 20, "the port seed corpus has only {seeds} files");
    replay("regressions/port", opte_fuzz::check_port);
}

#[test]
fn the_port_seeds_reach_every_result_both_ways_and_fill_the_tables() {
    let mut total = opte_fuzz::port::Run::default();
    for (_, data) in opte_fuzz::port::seeds() {
        let r = opte_fuzz::port::run_port(&data);
        for (t, s) in [(&mut total.r#in, r.r#in), (&mut total.out, r.out)] {
            t.modified += s.modified;
            t.hairpin += s.hairpin;
            t.drop += s.drop;
        }
        total.peak_flows = total.peak_flows.max(r.peak_flows);
    }
    assert!(
        total.out.modified > 0 && total.r#in.modified > 0,
        "{total:?}"
    );
    assert!(total.out.hairpin > 0, "{total:?}");
    assert!(total.out.drop + total.r#in.drop > 0, "{total:?}");
    // The flood seeds fill the outbound UFT and the TCP table (8 entries each).
    let l = opte_fuzz::port::limits();
    assert!(total.peak_flows >= l.uft.get() + l.tcp.get(), "{total:?}");
}

#[test]
fn the_control_fixture_has_flows_to_page_through() {
    use opte_api::Direction;
    use opte_fuzz::control_fixture::{FIXTURE_CONNECTIONS, host};
    let x = host();
    let n = u32::from(FIXTURE_CONNECTIONS);
    let (out, inb, tcp0, tcp1) = (
        x.port("opte0").unwrap().with_vpc(|v| v.port().dump_uft()),
        x.port("opte1").unwrap().with_vpc(|v| v.port().dump_uft()),
        x.port("opte0")
            .unwrap()
            .with_vpc(|v| v.port().dump_tcp_flows()),
        x.port("opte1")
            .unwrap()
            .with_vpc(|v| v.port().dump_tcp_flows()),
    );
    assert_eq!(out.unwrap().out_num_flows, n);
    assert_eq!(inb.unwrap().in_num_flows, n);
    assert_eq!(tcp0.unwrap().flows.len(), n as usize);
    assert_eq!(tcp1.unwrap().flows.len(), n as usize);
    // More than one page of one entry, so a seed can start from a second page's cursor.
    let page = x
        .port("opte0")
        .unwrap()
        .with_vpc(|v| v.port().dump_uft_page(Direction::Out, 0, 1))
        .unwrap();
    assert!(page.next.is_some());
}
