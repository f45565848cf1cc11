using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Runner.Host.Settings;
using Xunit;
using YamlDotNet.RepresentationModel;

namespace Runner.Host.Tests;

/// <summary>
/// The Swarm stack and the compose file validate with the docker client (no engine needed), and
/// render with the properties the operations design depends on. A missing docker client fails.
/// </summary>
public sealed partial class DeploymentFilesTests
{
    private static readonly string s_root = FindRoot();

    [Fact]
    public async Task Swarm_stack_validates_and_runs_every_Runner_service_stop_first_with_a_drain_inside_its_grace_period()
    {
        var (code, output) = await RunAsync(["docker", "stack", "config", "-c", "swarm/stack.yml"]);
        Assert.True(code == 0, $"docker stack config failed ({code}):\n{output}");
        var services = Services(output);

        foreach (var name in new[] { "nats-1", "nats-2", "nats-3" })
        {
            var nats = services[name];
            Assert.Equal($"node.labels.runner.nats == {name[^1]}", Scalar(nats, "deploy", "placement", "constraints", "0"));
            Assert.Equal("stop-first", Scalar(nats, "deploy", "update_config", "order"));
            Assert.NotNull(Node(nats, "volumes", "0"));
        }
        Assert.Matches(SyncAlways(), await File.ReadAllTextAsync(Path.Combine(s_root, "swarm/nats.conf")));

        foreach (var name in new[] { "saga", "effects-general", "effects-batch" })
        {
            var service = services[name];
            Assert.Equal("stop-first", Scalar(service, "deploy", "update_config", "order"));
            Assert.Equal("rollback", Scalar(service, "deploy", "update_config", "failure_action"));
            Assert.Equal("stop-first", Scalar(service, "deploy", "rollback_config", "order"));
            var grace = GoDuration(Scalar(service, "stop_grace_period")!);
            Assert.InRange(grace, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60));
            Assert.True(SettingsLoader.Duration(Scalar(service, "environment", "RUNNER_SHUTDOWN_TIMEOUT")!, out var drain));
            Assert.True(drain < grace, $"{name}: the drain deadline {drain} must end before the stop grace period {grace}");
            // The image's runner is a native executable (no dotnet in it); a one-shot probe needs no server GC.
            Assert.Equal(HealthCheck, string.Join(' ', ((YamlSequenceNode)Node(service, "healthcheck", "test")!).Select(n => n.ToString())));
            Assert.Equal("/run/secrets/runner_admin_token", Scalar(service, "environment", "RUNNER_ADMIN_TOKEN_FILE"));
            Assert.Contains(((YamlSequenceNode)Node(service, "secrets")!).Cast<YamlMappingNode>(), s => s["source"].ToString() == "runner_admin_token");
            Assert.NotNull(Node(service, "deploy", "resources", "limits", "memory"));
            Assert.Equal("/var/lib/runner", Scalar(service, "volumes", "0", "target"));
        }
        var saga = services["saga"];
        Assert.Equal("3", Scalar(saga, "deploy", "replicas"));
        Assert.Equal("1", Scalar(saga, "deploy", "placement", "max_replicas_per_node"));
        Assert.Equal("saga", Scalar(saga, "environment", "RUNNER_MODE"));
        // A volume and a worker id per task slot: a restarted task finds its own store and takes its own leases back at once.
        Assert.Contains("{{.Task.Slot}}", Scalar(saga, "volumes", "0", "source"), StringComparison.Ordinal);
        Assert.Contains("{{.Task.Slot}}", Scalar(saga, "environment", "RUNNER_WORKER_ID"), StringComparison.Ordinal);
        foreach (var name in new[] { "effects-general", "effects-batch" })
        {
            Assert.Equal("global", Scalar(services[name], "deploy", "mode"));
            Assert.Equal("effect", Scalar(services[name], "environment", "RUNNER_MODE"));
            Assert.StartsWith("node.labels.runner.pool == ", Scalar(services[name], "deploy", "placement", "constraints", "0"), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Compose_file_validates_with_NATS_JetStream_and_Runner_in_combined_mode()
    {
        var compose = await ComposeCommandAsync();
        var (code, output) = await RunAsync([.. compose, "-f", "docker/compose.yml", "config"]);
        Assert.True(code == 0, $"{string.Join(' ', compose)} config failed ({code}):\n{output}");
        var services = Services(output);
        var nats = string.Join(' ', ((YamlSequenceNode)Node(services["nats"], "command")!).Select(n => n.ToString()));
        Assert.Contains("-js", nats, StringComparison.Ordinal);
        Assert.Contains("-m 8222", nats, StringComparison.Ordinal);
        Assert.NotNull(Node(services["nats"], "volumes", "0"));
        Assert.Equal("combined", Scalar(services["runner"], "environment", "RUNNER_MODE"));
        Assert.Equal(HealthCheck, string.Join(' ', ((YamlSequenceNode)Node(services["runner"], "healthcheck", "test")!).Select(n => n.ToString())));
    }

    [Fact]
    public async Task Dockerfile_builds_both_programs_runs_as_non_root_and_checks_health()
    {
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(s_root, "docker/Dockerfile"));
        Assert.Matches(@"(?m)^FROM mcr\.microsoft\.com/dotnet/sdk:10\.0 AS build", dockerfile);
        // Both programs are native executables: the runtime stage carries no .NET runtime.
        Assert.Matches(@"(?m)^FROM mcr\.microsoft\.com/dotnet/runtime-deps:10\.0 AS runtime", dockerfile);
        // Runner.Host is compiled ahead of time (NativeAOT) for the image's architecture: restored and published for it.
        Assert.Matches(@"dotnet restore src/Runner\.Host/Runner\.Host\.csproj -r ""\$rid"" -p:PublishAot=true", dockerfile);
        Assert.Matches(@"dotnet publish src/Runner\.Host -c Release -r ""\$rid"" --no-restore -o /app -p:PublishAot=true ", dockerfile);
        Assert.Matches(@"(?m)^ENTRYPOINT \[""/app/runner"", ""serve""\]$", dockerfile);
        Assert.DoesNotContain("runner.dll", dockerfile, StringComparison.Ordinal);
        Assert.Matches(@"dotnet publish src/Runner\.Slice -c Release -r ", dockerfile);
        Assert.Matches(@"(?m)^USER \$APP_UID", dockerfile);
        // runner-slice under /usr, where every sandbox shows it, and the setting that points there.
        Assert.Matches(@"(?m)^COPY --from=build /slice/runner-slice /usr/local/bin/runner-slice$", dockerfile);
        Assert.Matches(@"RUNNER_SLICE_BIN=/usr/local/bin/runner-slice", dockerfile);
        Assert.Matches(@"(?ms)^HEALTHCHECK .*?""/app/runner"", ""health""", dockerfile);
        // Every project the two programs reference is copied before the restore.
        foreach (var project in new[] { "Core", "Messaging", "Scripting", "Storage", "Sagas", "Effects", "Host", "Slice" })
        {
            Assert.Contains($"COPY src/Runner.{project}/Runner.{project}.csproj", dockerfile, StringComparison.Ordinal);
        }
        foreach (var reference in Directory.EnumerateFiles(Path.Combine(s_root, "src"), "*.csproj", SearchOption.AllDirectories)
            .SelectMany(File.ReadLines).Select(l => ProjectReference().Match(l)).Where(m => m.Success))
        {
            Assert.Contains($"COPY src/{reference.Groups[1].Value}/{reference.Groups[1].Value}.csproj", dockerfile, StringComparison.Ordinal);
        }
    }

    private const string HealthCheck = "CMD env DOTNET_gcServer=0 /app/runner health";

    [GeneratedRegex(@"(?m)^\s*sync_interval:\s*always\s*$")]
    private static partial Regex SyncAlways();

    [GeneratedRegex(@"ProjectReference Include=""\.\.\\(Runner\.[A-Za-z]+)\\")]
    private static partial Regex ProjectReference();

    private static Dictionary<string, YamlMappingNode> Services(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var root = (YamlMappingNode)stream.Documents[0].RootNode;
        return ((YamlMappingNode)root["services"]).Children.ToDictionary(kv => kv.Key.ToString(), kv => (YamlMappingNode)kv.Value);
    }

    private static YamlNode? Node(YamlNode node, params string[] path)
    {
        foreach (var step in path)
        {
            node = node switch
            {
                YamlMappingNode map when map.Children.TryGetValue(new YamlScalarNode(step), out var child) => child,
                YamlSequenceNode list when int.TryParse(step, out var i) && i < list.Children.Count => list.Children[i],
                _ => null!,
            };
            if (node is null)
            {
                return null;
            }
        }
        return node;
    }

    private static string? Scalar(YamlNode node, params string[] path) => (Node(node, path) as YamlScalarNode)?.Value;

    /// <summary>Go's duration text as docker renders it: 1m0s, 45s, 1h2m3s.</summary>
    private static TimeSpan GoDuration(string text)
    {
        var total = TimeSpan.Zero;
        foreach (Match part in Regex.Matches(text, @"(\d+(?:\.\d+)?)(h|ms|m|s)"))
        {
            var n = double.Parse(part.Groups[1].Value, CultureInfo.InvariantCulture);
            total += part.Groups[2].Value switch
            {
                "h" => TimeSpan.FromHours(n),
                "m" => TimeSpan.FromMinutes(n),
                "s" => TimeSpan.FromSeconds(n),
                _ => TimeSpan.FromMilliseconds(n),
            };
        }
        return total;
    }

    /// <summary>The compose plugin (<c>docker compose</c>) where it is installed, else <c>docker-compose</c>.</summary>
    private static async Task<string[]> ComposeCommandAsync()
    {
        if ((await RunAsync(["docker", "compose", "version"])).Code == 0)
        {
            return ["docker", "compose"];
        }
        var (code, output) = await RunAsync(["docker-compose", "version"]);
        Assert.True(code == 0, $"neither 'docker compose' nor 'docker-compose' works here; scripts/prereqs.sh installs docker-compose ({output})");
        return ["docker-compose"];
    }

    private static async Task<(int Code, string Output)> RunAsync(string[] command)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = s_root };
        foreach (var arg in command[1..])
        {
            start.ArgumentList.Add(arg);
        }
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return (-1, $"{command[0]} could not be started: {ex.Message}");
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            return (process.ExitCode, await stdout + await stderr);
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Runner.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("repository root (Runner.slnx) not found above " + AppContext.BaseDirectory);
    }
}
