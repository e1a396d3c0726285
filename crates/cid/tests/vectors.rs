//! Every row of ../shared/cid-vectors/vectors.tsv, with inputs generated at test time by its generator.

mod common;

use std::fs;
use std::process::Command;

use s3ipfs_cid::{Importer, Profile, car, dag};

fn profile_of(column: &str) -> Profile {
    if column.starts_with("kubo --cid-version=1") {
        Profile::KUBO_V1
    } else if column.starts_with("kubo default") {
        Profile::KUBO_V0
    } else if column.starts_with("unixfs-v1-2025") {
        Profile::UNIXFS_V1_2025
    } else {
        panic!("vectors.tsv names an unknown profile: {column}")
    }
}

#[test]
fn every_shared_vector_gets_the_cid_kubo_gives() {
    let dir = common::vectors_dir();
    let table = fs::read_to_string(dir.join("vectors.tsv"))
        .unwrap_or_else(|e| panic!("cannot read {}/vectors.tsv ({e}); set S3IPFS_CID_VECTORS", dir.display()));
    let inputs = tempfile::tempdir().expect("temp dir");
    let status = Command::new("python3")
        .arg(dir.join("gen_pattern.py"))
        .arg(inputs.path())
        .status()
        .expect("python3 must be installed to generate the vector inputs");
    assert!(status.success(), "gen_pattern.py failed");

    let mut checked = 0;
    for (line_no, line) in table.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "line {} of vectors.tsv", line_no + 1);
        let (file, size, profile, expected) = (cols[0], cols[1], profile_of(cols[3]), cols[4]);
        let data = fs::read(inputs.path().join(file)).expect("generated input");
        assert_eq!(data.len().to_string(), size, "{file} has the size the table gives");

        // An odd feed size exercises partial chunks; the CID must not depend on it.
        let (blocks, summary) = common::import_split(Importer::new(profile), &data, &[100_003, 7, 262_144]);
        assert_eq!(summary.root.to_string(), expected, "{file} under {profile}");
        common::assert_well_formed(&blocks, &summary, &data);

        if data.len() <= 2 * 1024 * 1024 {
            let mut store = common::to_store(&blocks);
            let car_bytes = car::write_dag(&summary.root, &mut store, Vec::new()).expect("write CAR");
            let mut reader = car::CarReader::new(&car_bytes[..]).expect("CAR header");
            assert_eq!(reader.roots(), &[summary.root]);
            let mut from_car = s3ipfs_cid::MemoryBlocks::new();
            while let Some((cid, block)) = reader.next_block().expect("valid section") {
                from_car.insert(cid, block);
            }
            let mut out = Vec::new();
            dag::read_file(&summary.root, &mut from_car, &mut out).expect("file from CAR");
            assert!(out == data, "{file} under {profile} reads back from its CAR");
        }
        checked += 1;
    }
    assert_eq!(checked, 42, "vectors.tsv holds 14 inputs x 3 profiles");
    println!("{checked} vectors passed");
}
