using System.Diagnostics;
using System.Net;
using NATS.Client.JetStream;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>/health against real failures: NATS stopped and restarted, a data directory whose disk is full.</summary>
public sealed class HealthTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Health_fails_while_NATS_is_down_and_recovers_after_its_restart_without_losing_events()
    {
        Assert.True(nats.CanRestart, "this test restarts the NATS server, so it needs one it started itself");
        await using var scope = await OpsScope.StartAsync(nats, TimeSpan.FromMinutes(3));
        var (ct, stub) = (scope.Token, scope.Stub);
        await using var node = await RunnerNode.StartAsync(nats, stub.Url, ct);
        await using (var connection = await nats.ConnectAsync())
        {
            var js = new NatsJSContext(connection);
            for (var i = 0; i < 5; i++)
            {
                await RunnerNode.PublishCreatedAsync(js, $"a{i}", i, ct);
            }
        }

        var restart = nats.RestartAsync(TimeSpan.FromSeconds(4), ct);
        await node.WaitUntilAsync(async () => (await node.GetAsync("health", ct)).Status == HttpStatusCode.ServiceUnavailable, "health to fail", ct);
        var down = await node.GetAsync("health", ct);
        Assert.Equal(["jetstream"], down.Body!["failing"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.True(down.Body!["checks"]!["storage"]!["ok"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await node.GetAsync("ready", ct)).Status);
        await restart;

        await node.WaitUntilAsync(async () => (await node.GetAsync("health", ct)).Status == HttpStatusCode.OK, "health to recover", ct);
        await using (var connection = await nats.ConnectAsync())
        {
            var js = new NatsJSContext(connection);
            for (var i = 5; i < 10; i++)
            {
                await RunnerNode.PublishCreatedAsync(js, $"a{i}", i, ct);
            }
            // Every event before and after the restart ends with a result: nothing was lost.
            await node.WaitUntilAsync(async () => await RunnerNode.MessagesAsync(js, "WORKFLOW_EVENTS", ct, "workflow.evt.acme.work.do.succeeded") == 10, "10 results", ct);
        }
        Assert.Equal(10, stub.Requests.Select(r => RunnerNode.Json(r.Body).GetProperty("n").GetInt32()).Distinct().Count());
    }

    [Fact]
    public async Task Health_fails_when_the_data_disk_is_full_and_recovers_when_space_returns()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var ct = scope.Token;
        using var mount = new TempDirectory("runner-health-disk");
        var (code, output) = await RunAsync(ct, "mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mount.Path);
        Assert.True(code == 0, $"this test mounts a 16 MiB tmpfs as the data directory (needs root or CAP_SYS_ADMIN); mount exited {code}: {output}");
        try
        {
            await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, ct, configure: env =>
            {
                env["RUNNER_DATA_DIR"] = mount.Path;
                env["RUNNER_LMDB_MAP_SIZE"] = "4MiB";
            });
            Assert.Equal(HttpStatusCode.OK, (await node.GetAsync("health", ct)).Status);

            var filler = Path.Combine(mount.Path, "filler");
            Fill(filler);
            var full = await node.GetAsync("health", ct);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, full.Status);
            Assert.Equal(["storage"], full.Body!["failing"]!.AsArray().Select(n => n!.GetValue<string>()));
            Assert.Contains("space", full.Body!["checks"]!["storage"]!["error"]!.GetValue<string>(), StringComparison.OrdinalIgnoreCase);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await node.GetAsync("ready", ct)).Status);

            File.Delete(filler);
            Assert.Equal(HttpStatusCode.OK, (await node.GetAsync("health", ct)).Status);
            Assert.Equal(HttpStatusCode.OK, (await node.GetAsync("ready", ct)).Status);
            Assert.Equal(0, await node.TerminateAsync(ct));
        }
        finally
        {
            await RunAsync(CancellationToken.None, "umount", "-l", mount.Path);
        }
    }

    /// <summary>Writes until the disk says it is full (bounded by the tmpfs size).</summary>
    private static void Fill(string path)
    {
        var chunk = new byte[256 * 1024];
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1);
        for (var i = 0; i < 1024; i++)
        {
            try
            {
                stream.Write(chunk);
                stream.Flush(flushToDisk: true);
            }
            catch (IOException)
            {
                return;
            }
        }
        Assert.Fail("the disk never filled up");
    }

    private static async Task<(int Code, string Output)> RunAsync(CancellationToken cancellationToken, string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync(cancellationToken) + await process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, output);
    }
}
