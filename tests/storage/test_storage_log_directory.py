"""The data directory: lock, meta.properties, checkpoints, clean-shutdown marker, deletion."""

import subprocess
import sys
import uuid

import pytest

from odradek.storage.config import LogConfig
from odradek.protocol.records.header import read_batch_header
from odradek.storage.errors import InconsistentLogDirectory, LogDirectoryLocked, OffsetOutOfRange
from odradek.storage.fs import MemoryFileSystem
from odradek.storage.log_directory import LogDirectory

from storage_batches import make_batch

NOW = 1_700_000_000_500


def clock():
    return NOW


def test_a_directory_locked_by_another_process_is_refused(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom odradek.storage.log_directory import LogDirectory\n"
         f"LogDirectory.open({str(tmp_path)!r}, node_id=1)\nprint('locked', flush=True)\ntime.sleep(30)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LogDirectoryLocked, match="in use by another process"):
            LogDirectory.open(str(tmp_path), node_id=1)
    finally:
        holder.kill()
        holder.wait()
    LogDirectory.open(str(tmp_path), node_id=1).close()  # the lock died with its process


def test_a_second_open_in_the_same_process_is_refused(tmp_path):
    directory = LogDirectory.open(str(tmp_path), node_id=1)
    with pytest.raises(LogDirectoryLocked):
        LogDirectory.open(str(tmp_path), node_id=1)
    directory.close()
    LogDirectory.open(str(tmp_path), node_id=1).close()


def test_meta_properties_must_match_node_and_cluster(tmp_path):
    LogDirectory.open(str(tmp_path), node_id=1, cluster_id="c1").close()
    with pytest.raises(InconsistentLogDirectory, match="node 1"):
        LogDirectory.open(str(tmp_path), node_id=2, cluster_id="c1")
    with pytest.raises(InconsistentLogDirectory, match="cluster c1"):
        LogDirectory.open(str(tmp_path), node_id=1, cluster_id="c2")
    directory = LogDirectory.open(str(tmp_path), node_id=1)
    assert directory.cluster_id == "c1" and directory.directory_id is not None
    directory.close()


def test_reads_a_kafka_written_meta_properties(tmp_path):
    (tmp_path / "meta.properties").write_text(
        "#\n#Tue Nov 25 05:00:00 UTC 2026\nnode.id=3\ndirectory.id=7HQ4x3HgTtWIjZoDHFqOtw\n"
        "version=1\ncluster.id=4L6g3nShT-eMCtK--X86sw\n")
    directory = LogDirectory.open(str(tmp_path), node_id=3)
    assert directory.cluster_id == "4L6g3nShT-eMCtK--X86sw"
    assert str(directory.directory_id) == str(uuid.UUID(bytes=__import__("base64").urlsafe_b64decode("7HQ4x3HgTtWIjZoDHFqOtw==")))
    directory.close()


@pytest.mark.parametrize("clean", [True, False])
def test_restart_restores_offsets(clean):
    fs = MemoryFileSystem()
    directory = LogDirectory.open("data", node_id=1, fs=fs, clock=clock,
                                  default_config=LogConfig(segment_bytes=300))
    topic_id = uuid.uuid4()
    log = directory.create_log("events", 0, topic_id=topic_id)
    other = directory.create_log("events", 1)
    for i in range(10):
        log.append(make_batch([b"v%d" % i]))
    log.update_high_watermark(8)
    log.delete_records_before(3)
    other.append(make_batch([b"x"]))
    if clean:
        directory.close()
    else:
        directory.flush_all()
        directory.checkpoint()
        directory._release_lock()  # the process died: no marker, checkpoints as last written
    directory = LogDirectory.open("data", node_id=1, fs=fs, clock=clock, default_config=LogConfig(segment_bytes=300))
    assert directory.had_clean_shutdown is clean
    assert not fs.exists("data/.kafka_cleanshutdown")
    log = directory.get_log("events", 0)
    assert (log.log_start_offset, log.high_watermark, log.log_end_offset) == (3, 8, 10)
    assert log.topic_id == topic_id and directory.get_log("events", 1).log_end_offset == 1
    directory.delete_log("events", 1)
    assert directory.get_log("events", 1) is None and not fs.exists("data/events-1")
    directory.close()


def test_interrupted_partition_deletion_is_finished_at_start():
    fs = MemoryFileSystem()
    directory = LogDirectory.open("data", node_id=1, fs=fs, clock=clock)
    directory.create_log("gone", 0).append(make_batch([b"x"]))
    directory.close()
    fs.rename("data/gone-0", "data/gone-0.0123456789abcdef-delete")
    directory = LogDirectory.open("data", node_id=1, fs=fs, clock=clock)
    assert directory.logs == {} and "gone-0.0123456789abcdef-delete" not in fs.listdir("data")
    directory.close()


def test_corrupt_checkpoints_are_ignored_and_logs_rescanned():
    fs = MemoryFileSystem()
    directory = LogDirectory.open("data", node_id=1, fs=fs, clock=clock)
    log = directory.create_log("t", 0)
    log.append(make_batch([b"a"]))
    log.update_high_watermark(1)
    directory.close()
    fs.write_file_atomic("data/recovery-point-offset-checkpoint", b"0\n7\ngarbage")
    directory = LogDirectory.open("data", node_id=1, fs=fs, clock=clock)
    assert directory.corrupt_checkpoints == ["recovery-point-offset-checkpoint"]
    assert not directory.had_clean_shutdown  # forced full recovery
    assert directory.get_log("t", 0).log_end_offset == 1 and directory.get_log("t", 0).high_watermark == 1
    directory.close()


@pytest.mark.parametrize("delay_ms", [60_000, 0])
def test_deleted_segments_wait_file_delete_delay_ms_as_deleted_files(tmp_path, delay_ms):
    """Kafka's asynchronous segment deletion: the files are renamed to *.deleted at once (no
    read sees them again) and unlinked file.delete.delay.ms later; 0 unlinks at once. What is
    still pending at a stop is removed by the next start."""
    now = [NOW]
    config = LogConfig(segment_bytes=300, file_delete_delay_ms=delay_ms)
    directory = LogDirectory.open(str(tmp_path), node_id=1, clock=lambda: now[0], default_config=config)
    log = directory.create_log("events", 0)
    for i in range(10):
        log.append(make_batch([b"%03d" % i * 40]))
    log.update_high_watermark(log.log_end_offset)
    doomed = [segment.log_path for segment in log.segments[:-2]]
    assert len(doomed) >= 2
    kept_start = log.segments[-2].base_offset
    assert log.delete_records_before(kept_start) == kept_start
    partition = tmp_path / "events-0"

    def deleted_files():
        return sorted(name for name in (p.name for p in partition.iterdir()) if name.endswith(".deleted"))

    expected = sorted(f"{path.rsplit('/', 1)[1][:-4]}{suffix}.deleted" for path in doomed
                      for suffix in (".log", ".index", ".timeindex"))
    assert all(not (partition / path.rsplit("/", 1)[1]).exists() for path in doomed)
    assert read_batch_header(log.read(kept_start, 10**6).read_bytes()).base_offset == kept_start
    with pytest.raises(OffsetOutOfRange):
        log.read(0, 10**6)
    if delay_ms == 0:
        assert deleted_files() == []
        directory.close()
        return
    assert [name for name in deleted_files() if not name.endswith(".txnindex.deleted")] == expected
    now[0] += delay_ms - 1
    assert directory.delete_pending_files() == 0 and deleted_files()
    now[0] += 1
    pending = len(deleted_files())
    assert directory.delete_pending_files() == pending > 0
    assert deleted_files() == []
    # Pending at a stop: the next start removes them.
    log.delete_records_before(log.log_end_offset)
    assert deleted_files()
    directory.close()
    directory = LogDirectory.open(str(tmp_path), node_id=1, clock=lambda: now[0], default_config=config)
    assert deleted_files() == []
    directory.close()


def test_a_deleted_partition_directory_waits_the_broker_delay():
    """Kafka's LogManager: the renamed <topic>-<partition>.<uuid>-delete directory goes after
    the broker's log.segment.delete.delay.ms; a topic of the same name can be created meanwhile."""
    now = [NOW]
    fs = MemoryFileSystem()
    directory = LogDirectory.open("data", node_id=1, fs=fs, clock=lambda: now[0],
                                  default_config=LogConfig(file_delete_delay_ms=30_000))
    directory.create_log("gone", 0).append(make_batch([b"x"]))
    directory.delete_log("gone", 0)
    (renamed,) = [name for name in fs.listdir("data") if name.startswith("gone-0.")]
    assert renamed.endswith("-delete") and fs.listdir(f"data/{renamed}")
    assert directory.create_log("gone", 0).log_end_offset == 0
    now[0] += 29_999
    assert directory.delete_pending_files() == 0 and fs.exists(f"data/{renamed}")
    now[0] += 1
    assert directory.delete_pending_files() == 1 and not fs.exists(f"data/{renamed}")
    assert fs.exists("data/gone-0")
    directory.close()
