//! Property tests: sizes around chunk and link boundaries, arbitrary write splits, assembly, CAR round trips and
//! corrupted CARs.

mod common;

use proptest::prelude::*;
use s3ipfs_cid::car::{CarReader, CarWriter};
use s3ipfs_cid::{Assembler, ChecksumSet, Cid, Importer, MemoryBlocks, Profile, Version, car, dag};

/// Small profiles make deep trees cheap: every shape kubo can build appears within a few kilobytes.
fn small_profiles() -> Vec<Profile> {
    vec![
        Profile::custom(Version::V1, true, 16, 3).expect("valid"),
        Profile::custom(Version::V1, true, 7, 2).expect("valid"),
        Profile::custom(Version::V0, false, 10, 4).expect("valid"),
        Profile::custom(Version::V1, false, 32, 5).expect("valid"),
    ]
}

/// Sizes at and around every chunk and link boundary up to depth 4, plus arbitrary sizes.
fn interesting_size(profile: Profile) -> impl Strategy<Value = usize> {
    let chunk = profile.chunk_size();
    let links = profile.max_links();
    let mut edges = vec![0, 1];
    let mut leaves = 1;
    for _ in 0..4 {
        for k in [leaves, leaves + 1, leaves * 2] {
            let base = k * chunk;
            edges.extend([base.saturating_sub(1), base, base + 1]);
        }
        leaves *= links;
    }
    let max = leaves * chunk / links + chunk;
    prop_oneof![proptest::sample::select(edges), 0..max]
}

fn profile_and_size() -> impl Strategy<Value = (Profile, usize)> {
    proptest::sample::select(small_profiles()).prop_flat_map(|p| (Just(p), interesting_size(p)))
}

fn data_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + usize::from(seed)) % 251) as u8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn the_root_never_depends_on_how_the_input_was_split(
        (profile, len) in profile_and_size(),
        seed in any::<u8>(),
        feeds in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let data = data_of(len, seed);
        let (whole_blocks, whole) = common::import_split(Importer::new(profile), &data, &[usize::MAX]);
        let (split_blocks, split) = common::import_split(Importer::new(profile), &data, &feeds);
        prop_assert_eq!(&split, &whole);
        prop_assert_eq!(split_blocks, whole_blocks.clone());
        prop_assert_eq!(whole.root, common::reference_root(profile, &data));
        common::assert_well_formed(&whole_blocks, &whole, &data);
    }

    #[test]
    fn the_file_reads_back_from_its_blocks_and_from_its_car((profile, len) in profile_and_size(), seed in any::<u8>()) {
        let data = data_of(len, seed);
        let (blocks, summary) = common::import_split(Importer::new(profile), &data, &[usize::MAX]);
        let mut store = common::to_store(&blocks);
        let mut out = Vec::new();
        prop_assert_eq!(dag::read_file(&summary.root, &mut store, &mut out).expect("read"), len as u64);
        prop_assert_eq!(&out, &data);

        let car_bytes = car::write_dag(&summary.root, &mut store, Vec::new()).expect("write");
        let mut reader = CarReader::new(&car_bytes[..]).expect("header");
        let mut from_car = MemoryBlocks::new();
        let mut order = Vec::new();
        while let Some((cid, block)) = reader.next_block().expect("section") {
            order.push(cid);
            from_car.insert(cid, block);
        }
        prop_assert_eq!(order.first(), Some(&summary.root), "root block first (DFS order)");
        prop_assert_eq!(order.len(), store.len(), "each distinct block exactly once");
        let mut again = Vec::new();
        dag::read_file(&summary.root, &mut from_car, &mut again).expect("read from CAR");
        prop_assert_eq!(again, data);
    }

    #[test]
    fn aligned_pieces_assemble_to_the_root_of_their_concatenation(
        profile in proptest::sample::select(small_profiles()),
        chunks_per_piece in proptest::collection::vec(0usize..12, 0..6),
        tail in 0usize..40,
        seed in any::<u8>(),
    ) {
        let chunk = profile.chunk_size();
        let mut sizes: Vec<usize> = chunks_per_piece.iter().map(|c| c * chunk).collect();
        sizes.push(tail);
        let data = data_of(sizes.iter().sum(), seed);
        let whole = common::import_split(Importer::new(profile), &data, &[usize::MAX]).1;

        let mut assembler = Assembler::new(profile);
        let mut nodes = Vec::new();
        let mut offset = 0;
        let mut all_blocks = Vec::new();
        for size in &sizes {
            let piece = &data[offset..offset + size];
            offset += size;
            let (blocks, summary) = common::import_split(Importer::new(profile).keep_leaves(), piece, &[usize::MAX]);
            all_blocks.extend(blocks);
            let leaves = summary.leaves.expect("leaves kept");
            nodes.extend(assembler.add_piece(*size as u64, &leaves).expect("aligned pieces assemble"));
        }
        let (last, root) = assembler.finish();
        nodes.extend(last);
        prop_assert_eq!(root.cid, whole.root);
        prop_assert_eq!(root.file_size, data.len() as u64);
        prop_assert_eq!(root.dag_size, whole.dag_size);

        all_blocks.extend(nodes);
        let mut store = common::to_store(&all_blocks);
        let mut out = Vec::new();
        dag::read_file(&root.cid, &mut store, &mut out).expect("assembled DAG reads back");
        prop_assert_eq!(out, data);
    }

    #[test]
    fn an_unaligned_piece_followed_by_another_is_refused(extra in 1usize..16) {
        let profile = small_profiles()[0];
        let first = data_of(profile.chunk_size() + extra, 1);
        let leaves = common::import_split(Importer::new(profile).keep_leaves(), &first, &[usize::MAX]).1.leaves.expect("kept");
        let mut assembler = Assembler::new(profile);
        assembler.add_piece(first.len() as u64, &leaves).expect("first piece");
        let second = assembler.add_piece(first.len() as u64, &leaves);
        let refused = matches!(second, Err(s3ipfs_cid::AssembleError::Unaligned { index: 0, .. }));
        prop_assert!(refused, "got {:?}", second);
    }

    #[test]
    fn any_single_byte_change_in_a_car_block_is_detected(pos_seed in any::<usize>(), flip in 1u8..=255) {
        let profile = small_profiles()[0];
        let data = data_of(200, 3);
        let (blocks, summary) = common::import_split(Importer::new(profile), &data, &[usize::MAX]);
        let car_bytes = car::write_dag(&summary.root, &mut common::to_store(&blocks), Vec::new()).expect("write");
        let header_len = header_len(&car_bytes);
        let pos = header_len + pos_seed % (car_bytes.len() - header_len);
        let mut corrupted = car_bytes.clone();
        corrupted[pos] ^= flip;
        prop_assert!(read_whole_file(&corrupted, &summary.root).is_err(), "byte {} changed and nothing noticed", pos);
    }

    #[test]
    fn a_truncated_car_never_yields_the_file(cut in any::<usize>()) {
        let profile = small_profiles()[1];
        let data = data_of(100, 9);
        let (blocks, summary) = common::import_split(Importer::new(profile), &data, &[usize::MAX]);
        let car_bytes = car::write_dag(&summary.root, &mut common::to_store(&blocks), Vec::new()).expect("write");
        let cut = cut % car_bytes.len();
        prop_assert!(read_whole_file(&car_bytes[..cut], &summary.root).is_err());
    }

    #[test]
    fn garbage_is_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(reader) = CarReader::new(&bytes[..]) {
            for item in reader.take(64) {
                if item.is_err() { break; }
            }
        }
        let _ = Cid::read_bytes(&bytes);
        let _ = s3ipfs_cid::pb::decode_node(&bytes);
        let _ = s3ipfs_cid::pb::decode_unixfs(&bytes);
    }
}

fn header_len(car_bytes: &[u8]) -> usize {
    let (len, used) = s3ipfs_cid::varint::decode(car_bytes).expect("header varint");
    used + len as usize
}

fn read_whole_file(car_bytes: &[u8], root: &Cid) -> Result<Vec<u8>, String> {
    let reader = CarReader::new(car_bytes).map_err(|e| e.to_string())?;
    let mut store = MemoryBlocks::new();
    for item in reader {
        let (cid, block) = item.map_err(|e| e.to_string())?;
        store.insert(cid, block);
    }
    let mut out = Vec::new();
    dag::read_file(root, &mut store, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

#[test]
fn a_garbage_header_names_what_is_wrong() {
    let err = CarReader::new(&[0x05, 0xa1, 0x61, 0x78, 0x01, 0x02][..]).expect_err("not a CAR");
    assert!(err.to_string().contains("invalid CAR header"), "{err}");
    let v2 = [0x0a, 0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02];
    assert!(matches!(CarReader::new(&v2[..]), Err(car::CarError::UnsupportedVersion(2))));
    assert!(matches!(CarReader::new(&[][..]), Err(car::CarError::Truncated)));
}

#[test]
fn a_block_under_the_wrong_cid_is_rejected() {
    let cid = Cid::for_block(Version::V1, s3ipfs_cid::cid::RAW, b"right");
    let mut writer = CarWriter::new(Vec::new(), &[cid]).expect("header");
    writer.write_block(&cid, b"wrong").expect("write");
    let car_bytes = writer.finish().expect("finish");
    let mut reader = CarReader::new(&car_bytes[..]).expect("header");
    assert!(matches!(reader.next_block(), Err(car::CarError::HashMismatch(c)) if c == cid));
}

#[test]
fn real_profiles_agree_with_the_reference_layout_around_chunk_boundaries() {
    for profile in Profile::ALL {
        let chunk = profile.chunk_size();
        for len in [chunk - 1, chunk, chunk + 1, 3 * chunk + 17] {
            let data = common::pattern(len);
            let (blocks, summary) = common::import_split(Importer::new(profile), &data, &[65_536, 1, 99_999]);
            assert_eq!(summary.root, common::reference_root(profile, &data), "{profile} at {len} bytes");
            common::assert_well_formed(&blocks, &summary, &data);
        }
    }
}

#[test]
fn cid_only_imports_compute_no_checksum() {
    let (_, summary) =
        common::import_split(Importer::new(Profile::KUBO_V1).with_checksums(ChecksumSet::NONE), b"abc", &[1]);
    assert_eq!(summary.checksums, s3ipfs_cid::Checksums::default());
    assert_eq!(summary.root, s3ipfs_cid::cid_of(Profile::KUBO_V1, b"abc"));
}
