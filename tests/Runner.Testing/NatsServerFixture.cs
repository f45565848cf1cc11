using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Xunit;

namespace Runner.Testing;

/// <summary>
/// A real nats-server with JetStream for a test collection: <c>RUNNER_TEST_NATS_URL</c> when set;
/// a Testcontainers container where a Docker engine answers; otherwise the <c>nats-server</c>
/// binary on a free loopback port with a temporary store. A missing server fails the tests loudly.
/// </summary>
public sealed class NatsServerFixture : IAsyncLifetime
{
    private readonly string _storeDir = Path.Combine(Path.GetTempPath(), "runner-test-nats-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly string? _config;
    private Process? _process;
    private IContainer? _container;
    private int _port;
    private int _monitorPort;

    public NatsServerFixture()
    {
    }

    private NatsServerFixture(string config)
    {
        _config = config;
    }

    /// <summary>
    /// A server of the test's own started with <paramref name="config"/>, a configuration file's text
    /// (users and their permissions, say): always the <c>nats-server</c> binary, never
    /// <c>RUNNER_TEST_NATS_URL</c> or a container. (A class fixture has one public constructor.)
    /// </summary>
    public static NatsServerFixture WithConfig(string config) => new(config);

    public string Url { get; private set; } = string.Empty;

    /// <summary>True when this fixture controls the server and can restart it.</summary>
    public bool CanRestart => _process is not null || _container is not null;

    public async Task InitializeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var external = Environment.GetEnvironmentVariable("RUNNER_TEST_NATS_URL");
        if (_config is null && !string.IsNullOrEmpty(external))
        {
            Url = external;
            return;
        }
        if (_config is null && DockerAvailable())
        {
            _port = FreePort();
            _container = new ContainerBuilder("nats:2.10")
                .WithCommand("-js", "-sd", "/data")
                .WithPortBinding(_port, 4222)
                .WithWaitStrategy(Wait.ForUnixContainer().UntilMessageIsLogged("Server is ready"))
                .Build();
            await _container.StartAsync(timeout.Token);
            Url = $"nats://127.0.0.1:{_port}";
            return;
        }
        var binary = FindBinary() ?? throw new InvalidOperationException(
            "nats-server not found on PATH: install it (apt-get install -y nats-server), or set RUNNER_TEST_NATS_URL to a server with JetStream");
        Directory.CreateDirectory(_storeDir);
        if (_config is not null)
        {
            await File.WriteAllTextAsync(Path.Combine(_storeDir, "nats.conf"), _config, timeout.Token);
        }
        // FreePort only finds a port free at that moment: with many test classes starting servers
        // at once, another may take it first. The server then exits at once; try fresh ports.
        for (var attempt = 1; ; attempt++)
        {
            _port = FreePort();
            _monitorPort = FreePort();
            try
            {
                await StartProcessAsync(binary, timeout.Token);
                return;
            }
            catch (InvalidOperationException) when (attempt < 5 && _process is { HasExited: true })
            {
                _process.Dispose();
                _process = null;
            }
        }
    }

    private async Task StartProcessAsync(string binary, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-a", "127.0.0.1", "-p", _port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-m", _monitorPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "-js", "-sd", _storeDir })
        {
            start.ArgumentList.Add(arg);
        }
        if (_config is not null)
        {
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(Path.Combine(_storeDir, "nats.conf"));
        }
        _process = Process.Start(start) ?? throw new InvalidOperationException("could not start nats-server");
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        _process.OutputDataReceived += (_, e) => Keep(output, e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(output, e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Url = $"nats://127.0.0.1:{_port}";
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"nats-server exited with code {_process.ExitCode}: {string.Join(" | ", output)}");
            }
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{_monitorPort}/healthz?js-enabled-only=true"), cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>Stops the server (SIGKILL) and starts it again on the same port and store.</summary>
    public async Task RestartAsync(TimeSpan downtime, CancellationToken cancellationToken)
    {
        if (_container is not null)
        {
            await _container.StopAsync(cancellationToken);
            await Task.Delay(downtime, cancellationToken);
            await _container.StartAsync(cancellationToken);
            return;
        }
        if (_process is null)
        {
            throw new InvalidOperationException("RUNNER_TEST_NATS_URL points at a server this fixture does not control");
        }
        var binary = _process.StartInfo.FileName;
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync(cancellationToken);
        _process.Dispose();
        await Task.Delay(downtime, cancellationToken);
        await StartProcessAsync(binary, cancellationToken);
    }

    private static void Keep(System.Collections.Concurrent.ConcurrentQueue<string> lines, string? line)
    {
        if (line is not null && lines.Count < 50)
        {
            lines.Enqueue(line);
        }
    }

    public async Task<NatsConnection> ConnectAsync()
    {
        var connection = new NatsConnection(new NatsOpts { Url = Url, Name = "runner-tests" });
        await connection.ConnectAsync();
        return connection;
    }

    public async Task DisposeAsync()
    {
        if (_container is not null)
        {
            await _container.DisposeAsync();
        }
        if (_process is not null)
        {
            try
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
            catch (InvalidOperationException)
            {
                // already gone
            }
            _process.Dispose();
        }
        try
        {
            Directory.Delete(_storeDir, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
        catch (UnauthorizedAccessException)
        {
            // best effort
        }
    }

    /// <summary>A loopback port for a server started in another process: see <see cref="TestPorts"/>.</summary>
    public static int FreePort() => TestPorts.Reserve();

    internal static string? FindBinary()
    {
        var paths = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Concat(["/usr/sbin", "/usr/local/bin", "/usr/bin"]);
        return paths.Select(p => Path.Combine(p, "nats-server")).FirstOrDefault(File.Exists);
    }

    private static bool DockerAvailable()
    {
        if (Environment.GetEnvironmentVariable("RUNNER_TEST_NO_DOCKER") == "1")
        {
            return false;
        }
        var host = Environment.GetEnvironmentVariable("DOCKER_HOST");
        var socket = host is not null && host.StartsWith("unix://", StringComparison.Ordinal) ? host["unix://".Length..] : "/var/run/docker.sock";
        if (host is not null && !host.StartsWith("unix://", StringComparison.Ordinal))
        {
            return true;
        }
        if (!File.Exists(socket))
        {
            return false;
        }
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(socket));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

[CollectionDefinition(Name)]
public sealed class NatsCollection : ICollectionFixture<NatsServerFixture>
{
    public const string Name = "nats";
}
