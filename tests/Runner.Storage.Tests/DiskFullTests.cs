using System.Diagnostics;
using Xunit.Abstractions;

namespace Runner.Storage.Tests;

/// <summary>
/// A real ENOSPC: the store lives on a 2 MiB tmpfs mounted for the test (needs root / CAP_SYS_ADMIN),
/// with a map far larger than the disk, so the disk fills before the map does.
/// </summary>
public sealed class DiskFullTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const long MiB = 1024 * 1024;

    private readonly CancellationTokenSource _cts = new(Batches.Timeout);
    private readonly string _mountPoint = Path.Combine(Path.GetTempPath(), $"runner-diskfull-{Guid.NewGuid():N}");
    private bool _mounted;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_mountPoint);
        var (code, output) = await RunAsync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", _mountPoint]);
        Assert.True(code == 0, $"this test needs to mount a 2 MiB tmpfs at {_mountPoint} (root or CAP_SYS_ADMIN); mount exited {code}: {output}");
        _mounted = true;
    }

    [Fact]
    public async Task Full_disk_fails_the_batch_cleanly_and_earlier_data_survives_reopen()
    {
        using var dir = new StoreDirectory(Path.Combine(_mountPoint, "store"));
        var options = dir.Options(initialMapSize: 64 * MiB, maxMapSize: 64 * MiB);
        var early = Batches.Transition(1, "order-1", 1, "early");
        var committed = new List<WriteBatch> { early };
        WriteBatch? failedBatch = null;
        StorageException? failure = null;
        using (var store = dir.Open(options))
        {
            await store.Writer.CommitAsync(early, _cts.Token).WaitAsync(_cts.Token);
            // 128 KiB per batch: the 2 MiB disk is full long before 64 batches.
            for (var i = 0; i < 64 && failure is null; i++)
            {
                var batch = Batches.Bulk($"fill-{i:D2}", 16, 8 * 1024);
                try
                {
                    await store.Writer.CommitAsync(batch, _cts.Token).WaitAsync(_cts.Token);
                    committed.Add(batch);
                }
                catch (StorageException ex)
                {
                    failure = ex;
                    failedBatch = batch;
                }
            }

            Assert.True(failure is not null, "8 MiB were committed to a 2 MiB disk without an error");
            output.WriteLine($"{committed.Count - 1} fill batches committed, then {failure!.Code}: {failure.Message}");
            Assert.Contains(failure!.Code, new[] { "disk_full", "io" });
            Assert.True(committed.Count > 1, "the disk filled before any fill batch could commit; the test proves too little");
            Batches.AssertAbsent(store, failedBatch!);
            committed.ForEach(b => Batches.AssertCommitted(store, b));
        }

        using var reopened = dir.Open(options);
        committed.ForEach(b => Batches.AssertCommitted(reopened, b));
        Batches.AssertAbsent(reopened, failedBatch!);
        // A batch that fits in the pages freed by the failed transaction still commits.
        var small = Batches.Transition(1, "order-1", 2, "after-full");
        await reopened.Writer.CommitAsync(small, _cts.Token).WaitAsync(_cts.Token);
        Batches.AssertCommitted(reopened, small);
    }

    public async Task DisposeAsync()
    {
        if (_mounted)
        {
            var (code, output) = await RunAsync("umount", [_mountPoint]);
            Assert.True(code == 0, $"umount {_mountPoint} exited {code}: {output}");
        }
        Directory.Delete(_mountPoint, recursive: true);
        _cts.Dispose();
    }

    private async Task<(int Code, string Output)> RunAsync(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        try
        {
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync(_cts.Token);
            var stderr = process.StandardError.ReadToEndAsync(_cts.Token);
            await process.WaitForExitAsync(_cts.Token);
            return (process.ExitCode, (await stdout + await stderr).Trim());
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return (-1, ex.Message);
        }
    }
}
