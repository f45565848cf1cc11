using System.Text.Json.Nodes;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>What an operator sees of partition ownership: <c>/info</c>, <c>runner partitions</c>, and a replica started with another partition count.</summary>
public sealed class PartitionsTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Info_and_the_partitions_command_show_each_partition_with_its_owner_epoch_and_lease()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, scope.Token);
        var worker = node.Environment["RUNNER_WORKER_ID"];
        JsonNode? info = null;
        await node.WaitUntilAsync(async () =>
        {
            info = (await node.GetAsync("info", scope.Token)).Body;
            // Partitions and routers are taken in the same rounds but not at the same moment: wait for both.
            return info?["ownership"]?["partitions"]?.AsArray().Count == 4 && info["ownership"]?["routers"]?.AsArray().Count >= 2;
        }, "4 partitions and the routers held", scope.Token);
        foreach (var partition in info!["ownership"]!["partitions"]!.AsArray())
        {
            Assert.Equal(1, partition!["lease"]!["epoch"]!.GetValue<long>());
            Assert.InRange(partition["lease"]!["lease_left_ms"]!.GetValue<long>(), 1, 10_000);
        }
        Assert.Equal(2, info["ownership"]!["routers"]!.AsArray().Count);

        using var command = RunnerProcess.Start(["partitions"], node.Environment);
        Assert.Equal(0, await command.WaitForExitAsync(scope.Token));
        var lines = command.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("PARTITION", lines[0], StringComparison.Ordinal);
        for (var p = 0; p < 4; p++)
        {
            var columns = lines[p + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal([p.ToString(System.Globalization.CultureInfo.InvariantCulture), "held", worker, "1"], columns[..4]);
        }
        Assert.Contains(lines, l => l.StartsWith($"replica {worker}: 4 partitions", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_replica_started_with_another_partition_count_refuses_to_start_and_says_why()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        await using var node = await RunnerNode.StartAsync(nats, scope.Stub.Url, scope.Token);
        var other = new Dictionary<string, string>(node.Environment)
        {
            ["RUNNER_PARTITIONS"] = "8",
            ["RUNNER_WORKER_ID"] = "other",
            ["RUNNER_DATA_DIR"] = node.Dir.File("other-data"),
        };
        using var process = RunnerProcess.Start(["serve"], other);
        Assert.Equal(1, await process.WaitForExitAsync(scope.Token));
        Assert.Contains("RUNNER_PARTITIONS is 8, but this deployment", process.Output, StringComparison.Ordinal);
        Assert.Contains("was created with 4 partitions", process.Output, StringComparison.Ordinal);
    }
}
