"""The zoo's command line.

python -m zoo list                 every model and data set, with its source and whether it is cached
python -m zoo info NAME            one entry in full
python -m zoo fetch NAME | --all   download Hub entries into the Hugging Face cache (with progress bars)
python -m zoo verify               sha256 of every bundled file against the manifest
python -m zoo train RECIPE         train a recipe; data-parallel under
                                   torchrun --nproc_per_node N -m zoo train RECIPE
python -m zoo compare A B [C D]    checkpoints side by side from the same noise (zoo names, RUN@STEP, local
                                   folders or files, Hub ids): grid.png, results.csv and results.json in --out;
                                   the ranks share the images under
                                   torchrun --nproc_per_node N -m zoo compare A B --images 1000 --metrics
python -m zoo posthoc-ema RUN@STEP --lengths 0.03,0.07 --out DIR
                                   post-hoc EMA: the checkpoint at each EMA length (sigma_rel), rebuilt from its
                                   run's snapshot streams, written as DIR/ema-<length>/ checkpoint folders
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from pathlib import Path

from core.device import threads_for, torch_threads
from core.errors import AtlasError
from core.training.distributed import launched_by_torchrun
from zoo.errors import HubError, NeedsConnectionError, ZooError
from zoo.hub import fetch, sha256_of, validate_repo_id
from zoo.loaders import availability
from zoo.registry import MANIFEST, Registry, load_registry

COMPARE_EPILOG = """\
Under torchrun the ranks share the sampling, each drawing its share of the chunks of 100 images (the same
chunks and seeds as one process: bit-identical images on the CPU); rank 0 gathers them, scores them and alone
writes --out (the tables' `ranks` column says how many shared the work):
  torchrun --standalone --nproc_per_node 2 -m zoo compare mnist-ddpm-linear mnist-flow --images 1000 --metrics
gloo on the CPU; with --device cuda, nccl and one GPU per rank (cuda:LOCAL_RANK)."""


def _rank0() -> bool:
    """Whether this process prints what a command made: always, but under torchrun only rank 0."""
    return os.environ.get("RANK", "0") == "0"


def cmd_list(reg: Registry) -> int:
    print(f"{'model':34} {'family':10} {'shape':12} {'status':13} source")
    for m in reg.models.values():
        shape = "x".join(map(str, m.sample_shape)) or "-"
        print(f"{m.name:34} {m.family:10} {shape:12} {availability(m):13} {m.source}")
    print(f"\n{'data set':34} {'shape':12} source")
    for d in reg.datasets.values():
        fallback = f" (offline: {d.offline_fallback})" if d.offline_fallback else ""
        print(f"{d.name:34} {'x'.join(map(str, d.shape)):12} Hub: {d.repo}{fallback}")
    return 0


def cmd_info(reg: Registry, name: str) -> int:
    entry = reg.models.get(name) or reg.datasets.get(name)
    if entry is None:
        raise ZooError(f"The zoo has no model or data set {name!r}.")
    for key, value in asdict(entry).items():
        print(f"{key:16} {value}")
    return 0


def cmd_fetch(reg: Registry, names: list[str]) -> int:
    for name in names:
        if name in reg.datasets:
            d = reg.datasets[name]
            paths = fetch(d.repo, list(d.splits.values()), revision=d.revision, repo_type="dataset")
        else:
            m = reg.model(name)
            if m.bundled:
                print(f"{name}: bundled, nothing to fetch")
                continue
            paths = fetch(str(m.repo), m.files, revision=m.revision, sha256=m.sha256)
        size = sum(p.stat().st_size for p in paths.values())
        print(f"{name}: {len(paths)} file(s), {size / 1e6:.1f} MB in the Hugging Face cache")
    return 0


def cmd_verify(reg: Registry) -> int:
    failures = 0
    for m in reg.models.values():
        if not m.bundled:
            continue
        for f in m.files:
            path = Path(m.path) / f
            expected = m.sha256.get(f)
            if not path.is_file():
                status = "MISSING"
            elif expected is None:
                status = "no pinned sha256"
            else:
                status = "ok" if sha256_of(path) == expected else "MISMATCH"
            failures += status in ("MISSING", "MISMATCH")
            print(f"{status:17} {m.name}/{f}")
    print(f"{failures} problem(s)")
    return 1 if failures else 0


def cmd_pin(reg: Registry, manifest: Path, names: list[str]) -> int:
    """Pin the sha256 of bundled files in the manifest text (one `sha256 = {...}` line after `path`)."""
    text = manifest.read_text(encoding="utf-8")
    for name in names:
        entry = reg.model(name)
        if not entry.bundled:
            raise ZooError(f"{name} is not bundled; only bundled files are pinned.")
        digests = ", ".join(f'"{f}" = "{sha256_of(Path(entry.path) / f)}"' for f in entry.files)
        blocks = text.split("[[")
        for k, block in enumerate(blocks):
            if block.startswith("models]]") and f'\nname = "{name}"\n' in block:
                lines = [line for line in block.split("\n") if not line.startswith("sha256 = ")]
                at = next(i for i, line in enumerate(lines) if line.startswith("path = "))
                lines.insert(at + 1, f"sha256 = {{ {digests} }}")
                blocks[k] = "\n".join(lines)
        text = "[[".join(blocks)
        print(f"pinned {len(entry.files)} file(s) of {name}")
    manifest.write_text(text, encoding="utf-8")
    load_registry.cache_clear()
    load_registry(manifest)  # the rewritten manifest must still parse
    return 0


def cmd_publish(reg: Registry, name: str, repo_id: str, dry_run: bool) -> int:
    entry = reg.model(name)
    if not entry.bundled:
        raise ZooError(f"{name} is not bundled; only bundled folders can be published.")
    repo_id = validate_repo_id(repo_id)
    files = sorted(p for p in Path(entry.path).rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    print(f"{'would upload' if dry_run else 'uploading'} {len(files)} files ({total / 1e6:.2f} MB) to {repo_id}:")
    for p in files:
        print(f"  {p.relative_to(entry.path).as_posix()}  ({p.stat().st_size:,} bytes)")
    if dry_run:
        return 0
    from httpx2 import TransportError  # the HTTP client huggingface_hub 2.x sends with
    from huggingface_hub import create_repo, upload_folder
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    try:
        create_repo(repo_id, exist_ok=True)
        upload_folder(repo_id=repo_id, folder_path=str(entry.path), commit_message=f"Upload {name} from Atlas")
    except OfflineModeIsEnabled:
        raise NeedsConnectionError("Publishing needs the Hub, and HF_HUB_OFFLINE is set.") from None
    except HfHubHTTPError as e:
        raise HubError(
            f"The Hub refused the upload to {repo_id} ({e.response.status_code}): log in with `hf auth login`."
        ) from None
    except (OSError, TransportError) as e:  # no connection, DNS, timeouts (the Hub client's transport errors)
        raise NeedsConnectionError(
            f"Publishing needs the Hub, which could not be reached ({e.__class__.__name__})."
        ) from None
    print("done")
    return 0


def cmd_posthoc_ema(spec: str, lengths: str, out: Path) -> int:
    from zoo.compare import run_checkpoint
    from zoo.errors import BadInputError
    from zoo.posthoc import rebuild

    folder = run_checkpoint(spec)
    if folder is None:
        raise BadInputError(f"{spec!r} is not RUN@STEP (a run folder and one of its checkpoints' steps).")
    try:
        values = [float(v) for v in lengths.split(",") if v.strip()]
    except ValueError:
        raise BadInputError(f"--lengths {lengths!r} is not a list of numbers (e.g. 0.03,0.07).") from None
    rebuild(folder, values, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command on the threads policy's threads (core/device.threads_for: all cores, each torchrun rank its
    share, or ATLAS_THREADS), putting the caller's count back after."""
    with torch_threads(threads_for("ddp-rank" if launched_by_torchrun() else "script")):
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zoo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="manifest to read (default: zoo/models.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list models and data sets")
    info = sub.add_parser("info", help="show one entry")
    info.add_argument("name")
    fetch_p = sub.add_parser("fetch", help="download Hub entries into the cache")
    fetch_p.add_argument("names", nargs="*")
    fetch_p.add_argument("--all", action="store_true")
    sub.add_parser("verify", help="check bundled files against their sha256")
    train_p = sub.add_parser("train", help="train a model from a recipe")
    train_p.add_argument("recipe", help="a name in zoo/recipes/ or a path to a recipe .toml")
    train_p.add_argument("--device", default="cpu")
    train_p.add_argument(
        "--steps", type=int, default=None, help="override the recipe's steps (epochs for vae/classifier)"
    )
    train_p.add_argument("--out", type=Path, default=None, help="output folder (default runs/NAME-TIMESTAMP)")
    train_p.add_argument(
        "--checkpoint-every", type=int, default=None, help="save weights every N steps (default: the recipe's)"
    )
    cmp = sub.add_parser(
        "compare",
        help="sample checkpoints from the same noise; write a grid and tables",
        epilog=COMPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmp.add_argument("checkpoints", nargs="*", help="1-4 of: zoo name, RUN@STEP, local folder or file, Hub id")
    cmp.add_argument(
        "--from",
        dest="from_file",
        type=Path,
        default=None,
        help="rerun from a grid.png or results.json (or any PNG/JSON the Atlas exported): its models and settings",
    )
    cmp.add_argument(
        "--sampler", default=None, help="default: as each folder's scheduler_config.json says, else dpmpp_2m"
    )
    cmp.add_argument("--steps", type=int, default=20)
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--images", type=int, default=16, help="images per checkpoint (the grid shows the first 64)")
    cmp.add_argument("--class", dest="label", type=int, default=None, help="a class, for class-conditional models")
    cmp.add_argument("--out", type=Path, default=Path("compare-out"))
    cmp.add_argument("--device", default="cpu")
    cmp.add_argument(
        "--metrics",
        action="store_true",
        help="FD-LeNet, precision/recall/density/coverage and class shares (MNIST models)",
    )
    cmp.add_argument("--raw", action="store_true", help="raw weights (unet/) where a checkpoint also has unet_ema/")
    cmp.add_argument("--mnist", action="store_true", help="score local 1x28x28 models as MNIST digits (--metrics)")
    phema = sub.add_parser("posthoc-ema", help="rebuild a run's checkpoint at other EMA lengths (post-hoc EMA)")
    phema.add_argument("checkpoint", help="RUN@STEP: a run (or training output) and a checkpoint step")
    phema.add_argument("--lengths", required=True, help="EMA lengths sigma_rel, comma-separated (e.g. 0.03,0.07)")
    phema.add_argument("--out", type=Path, default=Path("posthoc-ema"))
    pin = sub.add_parser("pin", help="write bundled files' sha256 into the manifest")
    pin.add_argument("names", nargs="+")
    publish = sub.add_parser("publish", help="upload a bundled folder to the Hub")
    publish.add_argument("name")
    publish.add_argument("--repo-id", required=True)
    publish.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    try:
        reg = load_registry(args.manifest)
        if args.command == "list":
            return cmd_list(reg)
        if args.command == "info":
            return cmd_info(reg, args.name)
        if args.command == "fetch":
            names = [*reg.models, *reg.datasets] if args.all else args.names
            if not names:
                parser.error("name a model or data set, or pass --all")
            return cmd_fetch(reg, names)
        if args.command == "train":
            from zoo.train import train

            out = train(args.recipe, args.out, args.steps, args.device, args.checkpoint_every)
            if _rank0():  # under torchrun only rank 0 writes
                print(f"wrote {out}")
            return 0
        if args.command == "compare":
            from zoo.compare import compare, from_file

            specs, settings = args.checkpoints, None
            if args.from_file is not None:
                if specs:
                    parser.error("name checkpoints or --from FILE, not both")
                specs, settings = from_file(args.from_file)
                if _rank0():
                    print(f"from {args.from_file}: {', '.join(specs)}")
            elif not specs:
                parser.error("name 1-4 checkpoints, or --from FILE")
            rows = compare(
                specs,
                reg,
                args.out,
                sampler=args.sampler,
                steps=args.steps,
                seed=args.seed,
                images=args.images,
                device=args.device,
                label=args.label,
                metrics=args.metrics,
                ema=not args.raw,
                mnist=args.mnist,
                settings=settings,
            )
            for row in rows:
                fd = f", FD-LeNet {row['fd_lenet']:.2f} ± {row['fd_se']:.2f}" if "fd_lenet" in row else ""
                measures = ("precision", "recall", "density", "coverage")
                if row.get("precision") is not None:
                    fd += "".join(f", {m} {row[m]:.3f} ± {row[m + '_se']:.3f}" for m in measures)
                print(f"{row['checkpoint']}: {row['images_per_second']:.1f} images/s{fd}")
            if _rank0():  # under torchrun the other ranks return no rows and write nothing
                print(f"wrote {args.out}/grid.png, results.csv, results.json")
            return 0
        if args.command == "posthoc-ema":
            return cmd_posthoc_ema(args.checkpoint, args.lengths, args.out)
        if args.command == "pin":
            return cmd_pin(reg, args.manifest, args.names)
        if args.command == "publish":
            return cmd_publish(reg, args.name, args.repo_id, args.dry_run)
        return cmd_verify(reg)
    except AtlasError as e:  # every expected failure carries its sentence; anything else is a bug
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
