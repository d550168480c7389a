"""Trace importers on tiny self-written files: parsing, units, clean-up, and errors that
name the file, the line and the column."""

from __future__ import annotations

import numpy as np
import pytest

from hydatis.errors import DataSourceError
from simulator.importers import (
    diurnal_profile,
    iter_bitbrains,
    load_alibaba_v2018,
    read_aggregate,
    read_bitbrains_vm,
    read_machine_meta,
    read_machine_usage,
    read_openb_nodes,
    read_openb_pods,
)

NODE_HEADER = "sn,cpu_milli,memory_mib,gpu,model\n"
POD_HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time\n"
)
BB_HEADER = (
    "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\t"
    "CPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB];\t"
    "Disk read throughput [KB/s];\tDisk write throughput [KB/s];\t"
    "Network received throughput [KB/s];\tNetwork transmitted throughput [KB/s]\n"
)


def write(path, text):
    path.write_text(text)
    return path


def bb_row(t, cores=2, cap=4000.0, use=1000.0, mcap=4194304.0, muse=1048576.0):
    pct = 100 * use / cap if cap else 0
    cells = [t, cores, cap, use, pct, mcap, muse, 0, 0, 0, 0]
    return ";\t".join(str(c) for c in cells) + "\n"


# --- OpenB -----------------------------------------------------------------------------


def test_openb_nodes_units(tmp_path):
    f = write(tmp_path / "n.csv", NODE_HEADER + "a,32000,262144,0,\nb,8000,1024,2,V100\n")
    nodes = read_openb_nodes(f)
    assert nodes["node"].tolist() == ["a", "b"]
    assert nodes["cpu_cores"].tolist() == [32.0, 8.0]
    assert nodes["mem_gib"].tolist() == [256.0, 1.0]


def test_openb_pods_qos_mapping(tmp_path):
    f = write(
        tmp_path / "p.csv",
        POD_HEADER
        + "p0,2000,1024,1,500,,LS,Running,0,100,0\n"
        + "p1,1000,2048,0,0,,Guaranteed,Running,10,20,10\n"
        + "p2,500,512,0,0,,Burstable,Failed,10,20,\n"
        + "p3,4000,4096,1,1000,V100,BE,Pending,30,90,\n",
    )
    pods = read_openb_pods(f)
    assert pods["priority"].tolist() == [1000, 1000, 500, 0]
    assert pods["qos"].tolist() == ["Burstable", "Guaranteed", "Burstable", "Burstable"]
    assert pods["cpu_request"].tolist() == [2.0, 1.0, 0.5, 4.0]
    assert pods["mem_request"].tolist() == [1.0, 2.0, 0.5, 4.0]
    assert pods["cpu_limit"].iloc[1] == 1.0 and pods["mem_limit"].iloc[1] == 2.0
    assert pods["cpu_limit"].drop(index=1).isna().all()
    assert np.isnan(pods["scheduled_s"].iloc[2])


@pytest.mark.parametrize(
    ("body", "line", "column"),
    [
        (
            "p0,2000,1024,1,500,,LS,Running,0,100,0\np1,abc,1,0,0,,LS,Running,0,1,0\n",
            3,
            "cpu_milli",
        ),
        ("p0,2000,1024,1,500,,XX,Running,0,100,0\n", 2, "qos"),
        ("p0,2000,1024,1,500,,LS,Running,50,10,0\n", 2, "deletion_time"),
        ("p0,-5,1024,1,500,,LS,Running,0,10,0\n", 2, "cpu_milli"),
        ("p0,1,1,1,500,,LS,Running,0,10,0\np0,1,1,1,500,,LS,Running,0,10,0\n", 3, "name"),
        ("p0,2000,1024,1,500,,LS,Running,,10,0\n", 2, "creation_time"),
    ],
    ids=["not-a-number", "unknown-qos", "deleted-before-created", "negative", "duplicate", "empty"],
)
def test_openb_pods_bad_input_names_file_line_column(tmp_path, body, line, column):
    f = write(tmp_path / "bad_pods.csv", POD_HEADER + body)
    with pytest.raises(DataSourceError, match=rf"bad_pods\.csv: line {line}, column '{column}'"):
        read_openb_pods(f)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("sn,cpu_milli,gpu,model\na,1,0,\n", r"bad_nodes\.csv: line 1: missing column"),
        (NODE_HEADER + "a,0,1024,0,\n", r"bad_nodes\.csv: line 2, column 'cpu_milli'"),
        (NODE_HEADER + "a,1000,1024,0,\nb,1000,x,0,\n", r"line 3, column 'memory_mib'"),
    ],
    ids=["missing-column", "zero-capacity", "not-a-number"],
)
def test_openb_nodes_bad_input(tmp_path, text, match):
    f = write(tmp_path / "bad_nodes.csv", text)
    with pytest.raises(DataSourceError, match=match):
        read_openb_nodes(f)


def test_openb_missing_file(tmp_path):
    with pytest.raises(DataSourceError, match="not found"):
        read_openb_pods("no_such_list.csv", data_dir=tmp_path)


def test_openb_file_by_name_in_data_dir(tmp_path):
    (tmp_path / "alibaba-openb").mkdir()
    write(
        tmp_path / "alibaba-openb" / "openb_pod_list_cpu200.csv",
        POD_HEADER + "p,1,1,0,0,,BE,Running,0,1,0\n",
    )
    assert len(read_openb_pods("openb_pod_list_cpu200.csv", data_dir=tmp_path)) == 1


# --- Bitbrains -------------------------------------------------------------------------


def test_bitbrains_grid_duplicates_gaps_resizes(tmp_path):
    t0 = 1_372_629_900  # a multiple of 300
    rows = [
        bb_row(t0, use=1000.0),
        bb_row(t0, use=1000.0),  # duplicate
        bb_row(t0 + 300, use=2000.0),
        bb_row(t0 + 450, cap=0.0, use=0.0, mcap=0.0, muse=0.0),  # unreported: dropped
        # gap at t0 + 600
        bb_row(t0 + 900, cap=8000.0, use=4000.0),  # resized VM
        bb_row(t0 + 1200, cap=8000.0, use=9000.0),  # above provisioned: clipped
    ]
    vm = read_bitbrains_vm(write(tmp_path / "7.csv", BB_HEADER + "".join(rows)))
    assert vm.vm == "7" and vm.t0 == t0 and len(vm) == 5
    np.testing.assert_allclose(vm.cpu_frac, [0.25, 0.5, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(vm.mem_frac, 0.25)
    assert vm.observed.tolist() == [True, True, False, True, True]
    assert (vm.n_duplicates, vm.n_unreported, vm.n_resizes) == (1, 1, 1)
    assert vm.mem_gib == pytest.approx(4.0)


def test_bitbrains_chunked_equals_whole(tmp_path):
    rows = "".join(bb_row(1_372_629_900 + 300 * i, use=100.0 * (i % 7)) for i in range(50))
    f = write(tmp_path / "1.csv", BB_HEADER + rows)
    a, b = read_bitbrains_vm(f), read_bitbrains_vm(f, chunksize=7)
    np.testing.assert_array_equal(a.cpu_frac, b.cpu_frac)


def test_bitbrains_folder_pattern_and_order(tmp_path):
    month = tmp_path / "bitbrains-rnd" / "2013-8"
    month.mkdir(parents=True)
    for name in ("10", "2", "1"):
        write(month / f"{name}.csv", BB_HEADER + bb_row(1_372_629_900))
    vms = list(iter_bitbrains("bitbrains-rnd/2013-8", data_dir=tmp_path))
    assert [v.vm for v in vms] == ["1", "2", "10"]
    vms = list(iter_bitbrains("bitbrains-rnd/2013-8/1*.csv", data_dir=tmp_path))
    assert [v.vm for v in vms] == ["1", "10"]


def test_bitbrains_bad_value_names_line(tmp_path):
    f = write(
        tmp_path / "3.csv",
        BB_HEADER
        + bb_row(1_372_629_900)
        + "1372630200;\t2;\toops;\t1;\t1;\t1;\t1;\t0;\t0;\t0;\t0\n",
    )
    with pytest.raises(
        DataSourceError, match=r"3\.csv: line 3, column 'CPU capacity provisioned \[MHZ\]'"
    ):
        read_bitbrains_vm(f)


def test_bitbrains_empty_folder(tmp_path):
    with pytest.raises(DataSourceError, match="no file matches"):
        list(iter_bitbrains(tmp_path))


# --- Alibaba v2018 ---------------------------------------------------------------------


def test_alibaba_usage_and_meta(tmp_path):
    usage = write(
        tmp_path / "usage.csv",
        "m_1,60,40,90,,,1.0,2.0,5\nm_1,0,120,95,,,1.0,2.0,-1\nm_2,30,10,50,,,1.0,2.0,101\n"
        "m_1,60,45,91,,,1.0,2.0,6\n",
    )
    meta = write(
        tmp_path / "meta.csv",
        "m_1,0,1,2,96,100,USING\nm_1,99,1,2,64,50,USING\nm_2,0,1,2,96,50,USING\n",
    )
    df = read_machine_usage(usage, chunksize=2)
    assert df["node"].tolist() == ["m_1", "m_1", "m_2"]
    assert df["cpu_util"].tolist() == [1.0, 0.45, 0.10]  # clipped; duplicate keeps last
    assert np.isnan(df["disk_io"].iloc[0]) and np.isnan(df["disk_io"].iloc[2])
    nodes = read_machine_meta(meta, mem_gib_at_100=512)
    assert nodes.set_index("node").loc["m_1"].tolist() == [64.0, 256.0, "USING"]
    ds = load_alibaba_v2018(usage=usage, meta=meta)
    ds.validate()
    assert len(ds.nodes) == 2 and ds.pods.empty


def test_alibaba_bad_usage_line(tmp_path):
    usage = write(tmp_path / "usage.csv", "m_1,60,40,90,,,1,2,5\nm_1,120,forty,90,,,1,2,5\n")
    with pytest.raises(DataSourceError, match=r"usage\.csv: line 2, column 'cpu_util_percent'"):
        read_machine_usage(usage)


# --- aggregates ------------------------------------------------------------------------


def test_diurnal_profile_means_one(tmp_path):
    folder = tmp_path / "datacenter-aggregates" / "google2019"
    folder.mkdir(parents=True)
    steps = np.arange(288 * 2)
    cpu = 0.4 + 0.1 * (steps % 288 >= 144)  # afternoon higher
    body = "".join(f"{c},0.3,0.6,1.0\n" for c in cpu)
    write(
        folder / "machine_usage_grouped_300_seconds.csv",
        "cpu_util,mem_util,assigned_mem,cycles_per_instruction\n" + body,
    )
    prof = diurnal_profile("google2019", data_dir=tmp_path)
    assert prof.shape == (24,) and prof.mean() == pytest.approx(1.0)
    assert prof[13] > prof[11]
    assert diurnal_profile("google2019", data_dir=tmp_path, bins=288).shape == (288,)
    assert read_aggregate("google2019", data_dir=tmp_path)["t_s"].iloc[-1] == 300 * 575


def test_aggregate_bad_value(tmp_path):
    f = write(tmp_path / "a.csv", "cpu_usage,assigned_mem\n1,2\n3,x\n")
    with pytest.raises(DataSourceError, match=r"a\.csv: line 3, column 'assigned_mem'"):
        read_aggregate("azure_v2", path=f)


def test_defaults_find_another_slices_files(tmp_path):
    """A default name falls back to the first match (another month, another pod mix);
    a name the user gives must exist."""
    from hydatis.errors import DataSourceError
    from simulator.importers._common import resolve_default

    (tmp_path / "bitbrains-rnd" / "2014-1").mkdir(parents=True)
    (tmp_path / "alibaba-openb").mkdir()
    (tmp_path / "alibaba-openb" / "openb_pod_list_cpu200.csv").write_text("x\n")
    month = resolve_default("bitbrains-rnd/2013-7", tmp_path, "bitbrains-rnd/*", dirs=True)
    assert month == tmp_path / "bitbrains-rnd" / "2014-1"
    pods = resolve_default(
        "alibaba-openb/openb_pod_list_default.csv", tmp_path, "alibaba-openb/openb_pod_list_*.csv"
    )
    assert pods.name == "openb_pod_list_cpu200.csv"
    with pytest.raises(DataSourceError, match="nothing matches"):
        resolve_default("alibaba-v2018/x.csv", tmp_path, "alibaba-v2018/*.csv")
