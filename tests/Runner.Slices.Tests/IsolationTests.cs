using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Runner.Slices.Tests;

/// <summary>What a slice sees of the machine, checked from inside real namespaces.</summary>
public sealed class IsolationTests : IDisposable
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));

    private CancellationToken Token => _timeout.Token;

    public void Dispose() => _timeout.Dispose();

    [Fact]
    public async Task A_slice_sees_its_own_pids_a_read_only_root_its_own_tmp_and_its_secret()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var marker = "host-tmp-" + Guid.NewGuid().ToString("N");
        await File.WriteAllTextAsync(Path.Combine(Path.GetTempPath(), marker), "host", Token);
        try
        {
            var request = SliceNode.Shell($$"""
                echo "pid=$$"
                echo "procs=$(ls /proc | grep -c '^[0-9]*$')"
                echo "id=$(id -u):$(id -g)"
                echo "host=$(hostname)"
                if touch /usr/x 2>/dev/null || touch /x 2>/dev/null; then echo root=rw; else echo root=ro; fi
                if [ -e /tmp/{{marker}} ]; then echo tmp=host; else echo tmp=own; fi
                touch /tmp/mine && echo tmpwrite=ok
                echo "secret=$(cat /run/secrets/api_key)"
                echo "spec=$(cat /run/slice/spec.json)"
                echo "env=${API_KEY:-none}:${MODE}"
                echo "nnp=$(grep NoNewPrivs /proc/self/status | tr -d ' \t')"
                echo "dev=$(ls /dev | tr '\n' ' ')"
                echo discarded > /dev/null && echo "devnull=$(head -c 4 /dev/zero | od -An -tx1 | tr -d ' ')"
                echo "passwd=$(grep -c '^root:' /etc/passwd)"
                if touch /etc/x 2>/dev/null; then echo etc=rw; else echo etc=ro; fi
                """) with
            {
                Secrets = new Dictionary<string, byte[]> { ["api_key"] = "s3cret"u8.ToArray() },
                Files = new Dictionary<string, byte[]> { ["spec.json"] = """{"slice":"v1"}"""u8.ToArray() },
                Environment = new Dictionary<string, string> { ["MODE"] = "test" },
            };
            var (exit, stdout) = await node.RunAsync(request, Token);

            Assert.Equal(0, exit.ExitCode);
            Assert.Null(exit.SetupError);
            var facts = stdout.Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
            Assert.True(int.Parse(facts["pid"]) <= 3, $"the slice's shell is one of the first pids of its own namespace, not a host pid: {facts["pid"]}");
            Assert.True(int.Parse(facts["procs"]) <= 6, $"only the slice's own processes are visible: {facts["procs"]}");
            Assert.Equal("0:0", facts["id"]);
            Assert.Equal("slice", facts["host"]);
            Assert.Equal("ro", facts["root"]);
            Assert.Equal("own", facts["tmp"]);
            Assert.Equal("ok", facts["tmpwrite"]);
            Assert.Equal("s3cret", facts["secret"]);
            Assert.Equal("""{"slice":"v1"}""", facts["spec"]);
            Assert.Equal("none:test", facts["env"]);
            Assert.Equal("NoNewPrivs:1", facts["nnp"]);
            Assert.Equal("fd full null random stderr stdin stdout urandom zero", facts["dev"].Trim());
            Assert.Equal("00000000", facts["devnull"]);
            Assert.Equal("1", facts["passwd"]);
            Assert.Equal("ro", facts["etc"]);
        }
        finally
        {
            File.Delete(Path.Combine(Path.GetTempPath(), marker));
        }
    }

    [Fact]
    public async Task Network_none_reaches_no_host_port_while_network_host_does()
    {
        await using var node = await SliceNode.StartAsync(Token);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var script = $"if bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null; then echo connect=yes; else echo connect=no; fi; echo \"links=$(ls /sys/class/net 2>/dev/null | tr '\\n' ' ')\"; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '";

        var (isolated, isolatedOut) = await node.RunAsync(SliceNode.Shell(script), Token);
        var (host, hostOut) = await node.RunAsync(SliceNode.Shell(script) with { Network = SliceNetwork.Host }, Token);

        Assert.Equal(0, isolated.ExitCode);
        Assert.Contains("connect=no", isolatedOut);
        Assert.Equal(["lo"], isolatedOut.Where(l => !l.Contains('=', StringComparison.Ordinal)).ToArray());
        Assert.Equal(0, host.ExitCode);
        Assert.Contains("connect=yes", hostOut);
    }

    [Fact]
    public async Task Only_declared_paths_are_visible_read_only_or_writable_and_files_belong_to_the_unprivileged_uid()
    {
        await using var node = await SliceNode.StartAsync(Token);
        var input = Directory.CreateDirectory(node.Dir.File("in")).FullName;
        var output = Directory.CreateDirectory(node.Dir.File("out")).FullName;
        var hidden = Directory.CreateDirectory(node.Dir.File("hidden")).FullName;
        await File.WriteAllTextAsync(Path.Combine(input, "a.txt"), "input", Token);
        await File.WriteAllTextAsync(Path.Combine(hidden, "h.txt"), "hidden", Token);
        Assert.True(OperatingSystem.IsLinux());
        if (OperatingSystem.IsLinux())
        {
            File.SetUnixFileMode(output, (UnixFileMode)0x1FF); // 0777: the slice uid writes here
        }
        var request = SliceNode.Shell($"""
            echo "in=$(cat {input}/a.txt)"
            if cat {hidden}/h.txt 2>/dev/null; then echo hidden=read; else echo hidden=no; fi
            if [ -e /etc/shadow ]; then echo shadow=visible; else echo shadow=no; fi
            if touch {input}/b.txt 2>/dev/null; then echo inwrite=yes; else echo inwrite=no; fi
            echo out > {output}/result.txt && echo outwrite=yes
            """) with
        { ReadOnlyPaths = [input], ReadWritePaths = [output] };

        var (exit, stdout) = await node.RunAsync(request, Token);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["in=input", "hidden=no", "shadow=no", "inwrite=no", "outwrite=yes"], stdout);
        var owner = await OwnerAsync(Path.Combine(output, "result.txt"));
        Assert.Equal(node.Launcher.Options.Uid, owner);
        Assert.NotEqual(0, owner);
    }

    private static async Task<int> OwnerAsync(string path)
    {
        var start = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true };
        using var process = System.Diagnostics.Process.Start(start)!;
        var text = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return int.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
