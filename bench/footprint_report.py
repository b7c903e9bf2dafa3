#!/usr/bin/python3
"""Footprint report for bench/footprint.sh (see there). Not a general tool.

Usage: footprint_report.py BUILD_DIR RESULTS_DIR [--variants] [--device]

--device reports BUILD_DIR/bench/libhybridml_device.so instead (hybridml_device_shared: the whole
device SDK an app links, hml_base + hml_runtime + hml_ota + hml_storage + hml_sync + hml_sdk, C ABI and C++ API
exported, no cloud code; target at most 2 MB) into RESULTS_DIR/footprint_device.json.

Reads BUILD_DIR/bench/libhybridml_runtime.so (the CMake target hybridml_runtime_shared: our
device runtime, hml_base + hml_runtime, built from the real objects: -O3, with -Os for the reference kernels and op definitions), strips a copy into
RESULTS_DIR, prints its size, the sizes of the third-party libraries it links (not ours), where
the bytes come from (per object file, from the link map; largest symbols), and writes
RESULTS_DIR/footprint.json.

--variants also recompiles the same sources with other flags (from compile_commands.json) and
links them the same way, to show what each would weigh: -O2, -Os, -O3 with -fvisibility=hidden,
and "mixed" (-Os for the reference kernels and the op definitions, -O3 for the rest). These are
measurements for a decision, not the shipped configuration.
"""
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

TARGET_BYTES = 1_000_000  # "at most 1 MB"; decimal megabyte, the stricter reading
LIB = "libhybridml_runtime.so"
# --device: the whole device SDK (runtime + sdk, no cloud code), "at most 2 MB" (decimal).
DEVICE = {"lib": "libhybridml_device.so", "map": "libhybridml_device.map", "target": 2_000_000,
          "json": "footprint_device.json",
          "what": "hybridml device SDK (hml_base + hml_runtime + hml_ota + hml_storage + hml_sync + hml_sdk; "
                  "our code only), as built, C ABI + C++ API exported "
                  "(bench/footprint_device_exports.map), --gc-sections, stripped:"}
THIRD_PARTY = ["libXNNPACK", "libpthreadpool", "libcpuinfo", "libonnx_proto", "libprotobuf"]


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def stripped_size(src, dst):
    shutil.copyfile(src, dst)
    run(["strip", "--strip-all", dst])
    return os.path.getsize(dst)


def section_sizes(path):
    sizes = {}
    for line in run(["size", "-A", path]).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def third_party(lib):
    """Sizes of the linked third-party libraries, as resolved by ldd."""
    out = []
    for line in run(["ldd", lib]).splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if not m:
            continue
        name, path = m.groups()
        if any(name.startswith(p + ".so") for p in THIRD_PARTY):
            real = os.path.realpath(path)
            out.append({"name": name, "path": real, "bytes": os.path.getsize(real)})
    return out


def per_object(map_path):
    """Bytes kept per object file in allocated sections, from the GNU ld link map."""
    totals = {}
    in_memory_map = False
    pending_name = None
    line_re = re.compile(r"^\s+(\S+)?\s*0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+\.o)$")
    with open(map_path) as f:
        for line in f:
            if line.startswith("Linker script and memory map"):
                in_memory_map = True
                continue
            if not in_memory_map:
                continue
            line = line.rstrip("\n")
            m = line_re.match(line)
            if m:
                name = m.group(1) or pending_name or ""
                pending_name = None
                if name.startswith((".debug", ".comment", ".note", ".group")):
                    continue
                obj = m.group(3)
                totals[obj] = totals.get(obj, 0) + int(m.group(2), 16)
            elif re.match(r"^ \S+$", line):
                pending_name = line.strip()
    return sorted(totals.items(), key=lambda kv: -kv[1])


def top_symbols(lib, n=20):
    out = []
    for line in run(["nm", "--size-sort", "-C", "-S", "--defined-only", lib]).splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4:
            out.append((int(parts[1], 16), parts[3]))
    return sorted(out, reverse=True)[:n]


def short(obj):
    if obj.endswith("/crti.o"):
        # GNU ld attributes the tables it generates to the first input file.
        return "linker-generated: .dynsym .dynstr .rela .plt .eh_frame_hdr (listed under crti.o)"
    return re.sub(r".*/CMakeFiles/[^/]+\.dir/", "", obj).replace(".cc.o", ".cc")


VARIANTS = {
    "O2": {"all": ["-O2"]},
    "Os": {"all": ["-Os"]},
    "O3-visibility-hidden": {"all": ["-O3", "-fvisibility=hidden", "-fvisibility-inlines-hidden",
                                     "-include", "bench/footprint_default_visibility.h"]},
    # Cold code (reference kernels: the fallback and oracle; op definitions: prepare time) small,
    # everything else as built.
    "mixed-Os-reference-and-ops": {"match": ["/backends/reference/", "/ops/"],
                                   "flags": ["-Os"], "else": ["-O3"]},
}


def build_variant(build_dir, source_dir, name, spec, link_cmd, objects, work):
    cc = json.load(open(os.path.join(build_dir, "compile_commands.json")))
    by_output = {}
    for entry in cc:
        args = shlex.split(entry["command"])
        if "-o" in args:
            by_output[os.path.normpath(os.path.join(entry["directory"],
                                                    args[args.index("-o") + 1]))] = entry
    jobs = []
    new_objects = []
    for i, obj in enumerate(objects):
        entry = by_output[os.path.normpath(os.path.join(build_dir, obj))]
        args = [a for a in shlex.split(entry["command"]) if a not in ("-O2", "-O3", "-Os")]
        if "all" in spec:
            extra = spec["all"]
        else:
            extra = spec["flags"] if any(m in entry["file"] for m in spec["match"]) else spec["else"]
        extra = [os.path.join(source_dir, e) if e.startswith("bench/") else e for e in extra]
        out = os.path.join(work, f"{i}_{os.path.basename(obj)}")
        args[args.index("-o") + 1] = out
        args = [args[0]] + extra + args[1:]
        # ccache is not wanted here: these objects are throwaway.
        if os.path.basename(args[0]) == "ccache":
            args = args[1:]
        jobs.append((args, entry["directory"]))
        new_objects.append(out)
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for fut in [pool.submit(subprocess.run, a, cwd=d, check=True, capture_output=True)
                    for a, d in jobs]:
            fut.result()
    out_lib = os.path.join(work, LIB)
    args = shlex.split(link_cmd)
    args = [a for a in args if not a.endswith(".o") and not a.startswith("-Wl,-Map=")]
    args[args.index("-o") + 1] = out_lib
    j = args.index("-o") + 2
    args = args[:j] + new_objects + args[j:]
    subprocess.run(args, cwd=build_dir, check=True, capture_output=True)
    return stripped_size(out_lib, os.path.join(work, LIB + ".stripped"))


def link_command(build_dir):
    cmds = run(["ninja", "-C", build_dir, "-t", "commands", "hybridml_runtime_shared"])
    line = cmds.strip().splitlines()[-1]
    line = line.replace(": && ", "").replace(" && :", "")
    objects = [a for a in shlex.split(line) if a.endswith(".o")]
    return line, objects


def device_report(build_dir, results_dir):
    os.makedirs(results_dir, exist_ok=True)
    lib = os.path.join(build_dir, "bench", DEVICE["lib"])
    stripped = os.path.join(results_dir, DEVICE["lib"] + ".stripped")
    size = stripped_size(lib, stripped)
    exported = len([l for l in run(["nm", "-D", "--defined-only", stripped]).splitlines() if l])
    objects = per_object(os.path.join(build_dir, "bench", DEVICE["map"]))
    met = size <= DEVICE["target"]
    print(DEVICE["what"])
    print(f"  {stripped}")
    print(f"  {size:>10,} bytes ({size / 1e6:.3f} MB, {size / 2**20:.3f} MiB); "
          f"target <= {DEVICE['target']:,} bytes: {'MET' if met else 'MISSED'}")
    print(f"  unstripped {os.path.getsize(lib):,} bytes; {exported} exported symbols")
    print("\nwhere our bytes come from (allocated sections per object file, from the link map):")
    total = sum(b for _, b in objects) or 1
    for obj, b in objects[:15]:
        print(f"  {b:>10,}  {100 * b / total:5.1f} %  {short(obj)}")
    report = {
        "benchmark": "footprint_device",
        "library": DEVICE["lib"],
        "stripped_bytes": size,
        "unstripped_bytes": os.path.getsize(lib),
        "target_bytes": DEVICE["target"],
        "target_met": met,
        "exported_symbols": exported,
        "third_party_not_ours": third_party(lib),
        "bytes_per_object": [{"object": short(o), "bytes": b} for o, b in objects],
    }
    with open(os.path.join(results_dir, DEVICE["json"]), "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nwrote {os.path.join(results_dir, DEVICE['json'])}")
    return 0


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    build_dir, results_dir = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    want_variants = "--variants" in sys.argv[3:]
    if "--device" in sys.argv[3:]:
        return device_report(build_dir, results_dir)
    source_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(results_dir, exist_ok=True)
    lib = os.path.join(build_dir, "bench", LIB)
    stripped = os.path.join(results_dir, LIB + ".stripped")
    size = stripped_size(lib, stripped)
    sections = section_sizes(stripped)
    deps = third_party(lib)
    exported = len([l for l in run(["nm", "-D", "--defined-only", stripped]).splitlines() if l])
    objects = per_object(os.path.join(build_dir, "bench", "libhybridml_runtime.map"))
    symbols = top_symbols(lib)
    met = size <= TARGET_BYTES

    print("hybridml device runtime (hml_base + hml_runtime; our code only), as built (-O3; -Os for reference kernels + ops),")
    print("public API exported (bench/footprint_exports.map), --gc-sections, stripped:")
    print(f"  {stripped}")
    print(f"  {size:>10,} bytes ({size / 1e6:.3f} MB, {size / 2**20:.3f} MiB); "
          f"target <= {TARGET_BYTES:,} bytes: {'MET' if met else 'MISSED'}")
    print(f"  unstripped {os.path.getsize(lib):,} bytes; {exported} exported symbols")
    print("  sections: " + ", ".join(f"{k} {v:,}" for k, v in
                                     sorted(sections.items(), key=lambda kv: -kv[1])[:6]))
    print("\nlinked third-party libraries (NOT ours, shown for context; system packages):")
    for d in deps:
        print(f"  {d['bytes']:>10,}  {d['name']:<22} {d['path']}")
    print("\nwhere our bytes come from (allocated sections per object file, from the link map):")
    total = sum(b for _, b in objects) or 1
    for obj, b in objects[:15]:
        print(f"  {b:>10,}  {100 * b / total:5.1f} %  {short(obj)}")
    print("\nlargest symbols (nm --size-sort -C):")
    for b, name in symbols[:12]:
        print(f"  {b:>8,}  {name[:110]}")

    variants = {}
    if want_variants:
        print("\nvariants (same sources recompiled with other flags, linked the same way):")
        link_cmd, objs = link_command(build_dir)
        for name, spec in VARIANTS.items():
            with tempfile.TemporaryDirectory(prefix=f"hml_footprint_{name}_") as work:
                try:
                    variants[name] = build_variant(build_dir, source_dir, name, spec, link_cmd,
                                                   objs, work)
                except subprocess.CalledProcessError as e:
                    err = (e.stderr or b"").decode(errors="replace")[-300:]
                    print(f"  {name}: build failed: {err}")
                    continue
            v = variants[name]
            print(f"  {v:>10,} bytes ({v / 1e6:.3f} MB)  {name}"
                  f"{'  <= 1 MB' if v <= TARGET_BYTES else ''}")

    report = {
        "benchmark": "footprint",
        "library": "libhybridml_runtime.so (hml_base + hml_runtime, our code only)",
        "flags": "as built (-O3, -Os for src/runtime/backends/reference and src/runtime/ops; -ffunction-sections -fdata-sections -fno-exceptions), "
                 "public API exported via footprint_exports.map, -Wl,--gc-sections, strip --strip-all",
        "stripped_bytes": size,
        "unstripped_bytes": os.path.getsize(lib),
        "target_bytes": TARGET_BYTES,
        "target_met": met,
        "exported_symbols": exported,
        "sections": sections,
        "third_party_not_ours": deps,
        "bytes_per_object": [{"object": short(o), "bytes": b} for o, b in objects],
        "largest_symbols": [{"bytes": b, "symbol": s} for b, s in symbols],
        "variants_stripped_bytes": variants,
    }
    with open(os.path.join(results_dir, "footprint.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nwrote {os.path.join(results_dir, 'footprint.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
