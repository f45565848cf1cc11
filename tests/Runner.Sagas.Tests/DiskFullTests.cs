using System.Diagnostics;
using Runner.Core.Keys;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// A full disk under a running pipeline: commits fail, nothing is acked, and once space is back
/// every event is applied exactly once. The store lives on a small tmpfs mounted for the test
/// (needs root or CAP_SYS_ADMIN, which the test machines have; it fails loudly otherwise).
/// </summary>
public sealed class DiskFullTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Full_disk_stalls_commits_without_losing_events_and_they_apply_once_space_returns()
    {
        var files = TestSagas.Counter();
        // Keep every event's padding in the state, so the store really grows past the disk.
        files["counter.js"] = files["counter.js"].Replace(
            "const next = { count: state.count + 1, order: state.order.concat([event.data.n]) };",
            "const next = { count: state.count + 1, order: state.order.concat([event.data.n]), pads: (state.pads || []).concat([event.data.pad]) };",
            StringComparison.Ordinal);
        await using var h = await SagaHarness.StartAsync(nats, files, o => o with { Partitions = 2 }, start: false);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        Directory.CreateDirectory(h.StorePath);
        var (code, output) = await RunAsync(cts.Token, "mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", h.StorePath);
        Assert.True(code == 0, $"mounting a tmpfs for the store needs root or CAP_SYS_ADMIN; mount exited {code}: {output}");
        try
        {
            await h.StartRuntimeAsync();
            var payload = new string('x', 2000);
            for (var i = 0; i < 400; i++)
            {
                await h.PublishAsync($"aggregate.acme.counter.f{i % 20}.added", SagaHarness.CloudEvent($"f-{i}", "added", new { n = i, pad = payload }), cancellationToken: cts.Token);
            }

            // The disk fills: some batches commit, then commits fail and nothing more is acked.
            await SagaHarness.WaitUntilAsync(async () =>
            {
                var c = await h.PartitionConsumerInfoAsync(0, cts.Token);
                var d = await h.PartitionConsumerInfoAsync(1, cts.Token);
                return c is not null && d is not null && c.NumAckPending + d.NumAckPending > 0 && h.Listener.Count < 400;
            }, TimeSpan.FromSeconds(30), "commits to stall on the full disk");
            var stalledAt = h.Listener.Count;
            Assert.True(stalledAt < 400, "the disk should have filled before all events were applied");

            (code, output) = await RunAsync(cts.Token, "mount", "-o", "remount,size=64m", h.StorePath);
            Assert.True(code == 0, $"remount exited {code}: {output}");

            await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 400 && h.Count(KeySpace.Outbox) == 0, TimeSpan.FromSeconds(60), "all events after space returned");
            for (var k = 0; k < 20; k++)
            {
                var order = h.Instance("acme", "counter", $"f{k}")!.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32());
                Assert.Equal(Enumerable.Range(0, 20).Select(j => (j * 20) + k), order);
            }
            Assert.Equal(400, (await h.CommandsAsync(cts.Token)).Select(c => c.Command.CommandId).Distinct().Count());
            Assert.Empty(h.Quarantine());
        }
        finally
        {
            await h.StopRuntimeAsync();
            await RunAsync(CancellationToken.None, "umount", h.StorePath);
        }
    }

    private static async Task<(int Code, string Output)> RunAsync(CancellationToken cancellationToken, string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, await stdout + await stderr);
    }
}
