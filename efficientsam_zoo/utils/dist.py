"""The end of a multi-process run, shared by the three training commands."""


def end_process_group() -> None:
    """Wait for every rank, then destroy the default process group (no-op in a single process).

    torch asks for this explicitly; left to interpreter exit, gloo's worker threads can be destroyed while still
    joinable, and a rank that trained and saved correctly dies with SIGABRT ("terminate called without an active
    exception"), failing the whole torchrun job. Seen on 2-process CPU runs under load."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
