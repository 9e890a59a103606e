//! Test helper: writes one shard row group at a time, forever, so a test can kill it mid-write.
//! Usage: slow_shard_writer <out_dir>

use datasets::shard::{ShardWriter, WriterOptions};
use datasets::Split;

fn main() {
    let out = std::env::args().nth(1).expect("usage: slow_shard_writer <out_dir>");
    let meta = tests::sample_meta(Split::Train);
    let opts = WriterOptions { rows_per_group: 4, ..WriterOptions::default() };
    let mut writer = ShardWriter::create(out.as_ref(), "train/train-00000-of-00001.parquet", &meta, opts).unwrap();
    for round in 0.. {
        writer.write(&tests::sample_records(&meta, 4, round)).unwrap();
        println!("wrote {round}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
