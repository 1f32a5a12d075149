"""Several data directories (``log.dirs``): each with its own meta.properties, lock and
checkpoints; new partitions placed in the directory with the fewest; all loaded at start."""

import pytest

from odradek.storage.checkpoints import read_meta_properties, read_offset_checkpoint, write_meta_properties
from odradek.storage.errors import InconsistentLogDirectory, LogDirectoryLocked
from odradek.storage.fs import MemoryFileSystem, OsFileSystem
from odradek.storage.log_directories import LogDirectories, stored_cluster_id
from odradek.storage.log_directory import LogDirectory

from storage_batches import make_batch

PATHS = ["a", "b", "c"]


def clock():
    return 1_700_000_000_500


def open_dirs(fs, paths=PATHS, **extra):
    return LogDirectories.open(paths, node_id=1, cluster_id=extra.pop("cluster_id", "cluster-1"), fs=fs,
                               clock=clock, **extra)


def test_new_partitions_go_to_the_directory_with_the_fewest():
    fs = MemoryFileSystem()
    dirs = open_dirs(fs)
    placed = []
    for index in range(7):
        dirs.create_log("spread", index).append(make_batch([b"v%d" % index]))
        placed.append(dirs.directory_of("spread", index).path)
    assert placed == ["a", "b", "c", "a", "b", "c", "a"]
    assert sorted(name for name in fs.listdir("a") if name.startswith("spread")) == ["spread-0", "spread-3", "spread-6"]
    # An existing partition is returned from where it is, not placed again.
    assert dirs.create_log("spread", 1) is dirs.get_log("spread", 1)
    dirs.delete_log("spread", 0)
    dirs.delete_log("spread", 3)
    dirs.create_log("later", 0)  # "a" now holds one partition, the fewest
    assert dirs.directory_of("later", 0).path == "a"
    dirs.close()


def test_every_directory_is_its_own_kafka_log_dir_and_all_load_at_start():
    fs = MemoryFileSystem()
    dirs = open_dirs(fs)
    for index in range(6):
        dirs.create_log("t", index).append(make_batch([b"x"] * (index + 1)))
    dirs.close()
    ids = set()
    for path in PATHS:
        meta = read_meta_properties(fs, f"{path}/meta.properties")
        assert (meta["node.id"], meta["cluster.id"]) == ("1", "cluster-1")
        ids.add(meta["directory.id"])
        assert fs.exists(f"{path}/.kafka_cleanshutdown")
        offsets = read_offset_checkpoint(fs, f"{path}/recovery-point-offset-checkpoint")
        assert set(offsets) == {("t", index) for index in range(6) if index % 3 == PATHS.index(path)}
    assert len(ids) == 3

    dirs = open_dirs(fs, cluster_id=None)
    assert dirs.had_clean_shutdown and dirs.cluster_id == "cluster-1"
    assert {key: log.log_end_offset for key, log in dirs.logs.items()} == {("t", i): i + 1 for i in range(6)}
    assert dirs.get_log("t", 4).append(make_batch([b"y"])).first_offset == 5
    dirs.close()
    assert stored_cluster_id(fs, ["elsewhere", "b"]) == "cluster-1"


def test_an_added_directory_is_formatted_with_the_cluster_id():
    fs = MemoryFileSystem()
    first = open_dirs(fs, ["a"])
    first.create_log("t", 0)
    first.close()
    dirs = open_dirs(fs, ["a", "b"], cluster_id=stored_cluster_id(fs, ["a", "b"]))
    assert read_meta_properties(fs, "b/meta.properties")["cluster.id"] == "cluster-1"
    assert dirs.create_log("t", 1) is not None and dirs.directory_of("t", 1).path == "b"
    dirs.close()


def test_a_partition_in_two_directories_refuses_the_start():
    fs = MemoryFileSystem()
    dirs = open_dirs(fs, ["a", "b"])
    dirs.create_log("twice", 0).append(make_batch([b"x"]))
    dirs.close()
    fs.makedirs("b/twice-0")
    with pytest.raises(InconsistentLogDirectory, match="Duplicate log directories for twice-0"):
        open_dirs(fs, ["a", "b"])
    # The refusal released every lock: the directories open once the copy is gone.
    fs.rmtree("b/twice-0")
    open_dirs(fs, ["a", "b"]).close()


def test_copied_directory_duplicate_path_and_other_cluster_are_refused():
    fs = MemoryFileSystem()
    open_dirs(fs, ["a", "b"]).close()
    with pytest.raises(InconsistentLogDirectory, match="Duplicate log directory found: a"):
        open_dirs(fs, ["a", "b", "a/"])
    meta = read_meta_properties(fs, "a/meta.properties")
    write_meta_properties(fs, "b/meta.properties", meta)  # b is now a copy of a
    with pytest.raises(InconsistentLogDirectory, match="same directory.id"):
        open_dirs(fs, ["a", "b"])
    write_meta_properties(fs, "b/meta.properties", dict(meta, **{"cluster.id": "other", "directory.id": "AAAAAAAAAAAAAAAAAAAAAQ"}))
    with pytest.raises(InconsistentLogDirectory, match="cluster"):
        open_dirs(fs, ["a", "b"])
    open_dirs(fs, ["a"]).close()  # nothing stayed locked


def test_each_directory_has_its_own_lock(tmp_path):
    paths = [str(tmp_path / "one"), str(tmp_path / "two")]
    held = LogDirectory.open(paths[1], node_id=1, cluster_id="cluster-1")
    with pytest.raises(LogDirectoryLocked):
        open_dirs(OsFileSystem(), paths)
    held.close()
    dirs = open_dirs(OsFileSystem(), paths)
    assert (tmp_path / "one" / ".lock").exists() and (tmp_path / "two" / ".lock").exists()
    dirs.close()


def test_abandon_releases_the_locks_and_makes_nothing_durable(tmp_path):
    paths = [str(tmp_path / name) for name in PATHS]
    dirs = open_dirs(OsFileSystem(), paths)
    dirs.create_log("dropped", 0).append(make_batch([b"unflushed"]))
    dirs.abandon()
    for path in paths:
        assert not (tmp_path / path / ".kafka_cleanshutdown").exists()  # no clean shutdown claimed
    again = open_dirs(OsFileSystem(), paths)  # the locks are free: a new broker state takes them
    assert again.get_log("dropped", 0) is not None
    again.close()


def test_a_memory_file_system_copy_is_independent():
    fs = MemoryFileSystem()
    dirs = open_dirs(fs)
    dirs.create_log("kept", 0).append(make_batch([b"before"]))
    dirs.close()
    copied = fs.copy()
    dirs = open_dirs(fs)
    dirs.get_log("kept", 0).append(make_batch([b"after"]))
    dirs.close()
    from_copy = open_dirs(copied)
    assert from_copy.had_clean_shutdown
    assert from_copy.get_log("kept", 0).log_end_offset == 1
    from_copy.close()
    assert open_dirs(fs).get_log("kept", 0).log_end_offset == 2
