using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Sagas.Manifests;
using Runner.Storage;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// A saga runtime started while its server cannot answer the JetStream API yet (here: a server
/// without JetStream, as a cluster electing its leaders after a deploy answers nothing) waits for
/// it instead of failing its start, and starts once JetStream answers on the same address.
/// </summary>
public sealed class StartupWaitTests
{
    [Fact]
    public async Task A_runtime_started_before_jetstream_answers_waits_and_then_starts()
    {
        var binary = NatsServerFixture.FindBinary() ?? throw new InvalidOperationException("nats-server is not installed: run scripts/test.sh, which installs it");
        using var dir = new TempDirectory("runner-startup");
        var port = NatsServerFixture.FreePort();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var coreOnly = Start(binary, port, jetStream: false, dir.File("js"));
        Process? withJetStream = null;
        try
        {
            var manifestDir = dir.File("manifests");
            Directory.CreateDirectory(manifestDir);
            foreach (var (name, content) in TestSagas.Counter())
            {
                await File.WriteAllTextAsync(Path.Combine(manifestDir, name), content, cts.Token);
            }
            var options = new SagaRuntimeOptions { Partitions = 4, PartitionLease = TimeSpan.FromSeconds(2) };
            var manifests = ManifestLoader.Load(manifestDir, options.JetStream.Streams).Set!;
            await using var connection = new NatsConnection(new NatsOpts { Url = $"nats://127.0.0.1:{port}" });
            await WaitAsync(async () =>
            {
                try
                {
                    await connection.ConnectAsync();
                    return true;
                }
                catch (NatsException)
                {
                    return false;
                }
            }, cts.Token);
            using var store = new LmdbStore(new LmdbOptions { Path = dir.File("lmdb") }, NullLogger<LmdbStore>.Instance);
            var js = new NatsJSContext(connection);
            await using var runtime = new SagaRuntime(js, store, manifests, options, NullLoggerFactory.Instance, TimeProvider.System);

            var starting = runtime.StartAsync(cts.Token);
            await Task.Delay(TimeSpan.FromSeconds(3), cts.Token);
            Assert.False(starting.IsCompleted, starting.Exception?.GetBaseException().Message ?? "the start finished without JetStream");

            // JetStream comes up on the same address; the client reconnects and the start goes on.
            coreOnly.Kill(entireProcessTree: true);
            await coreOnly.WaitForExitAsync(cts.Token);
            withJetStream = Start(binary, port, jetStream: true, dir.File("js"));
            await starting.WaitAsync(cts.Token);

            Assert.NotNull(runtime.Coordinator);
            var inbox = await js.GetStreamAsync(options.JetStream.Streams.Inbox, cancellationToken: cts.Token);
            Assert.Equal(options.JetStream.Streams.Inbox, inbox.Info.Config.Name);
            await SagaHarness.WaitUntilAsync(() => runtime.OwnedPartitions.Count == 4, TimeSpan.FromSeconds(20), "the partitions taken");
        }
        finally
        {
            Stop(coreOnly);
            Stop(withJetStream);
        }
    }

    private static Process Start(string binary, int port, bool jetStream, string storeDir)
    {
        var start = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-a", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }
        if (jetStream)
        {
            start.ArgumentList.Add("-js");
            start.ArgumentList.Add("-sd");
            start.ArgumentList.Add(storeDir);
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start nats-server");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Stop(Process? process)
    {
        if (process is { HasExited: false })
        {
            process.Kill(entireProcessTree: true);
        }
        process?.Dispose();
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        while (!await condition())
        {
            await Task.Delay(100, cancellationToken);
        }
    }
}
