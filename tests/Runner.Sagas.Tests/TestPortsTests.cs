using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>The ports the tests give the servers they start: never one an outgoing connection or another test process may take.</summary>
public sealed class TestPortsTests
{
    [Fact]
    public void Reserved_ports_are_distinct_free_and_outside_the_ephemeral_range()
    {
        var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
        var (low, high) = (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));

        var ports = Enumerable.Range(0, 200).Select(_ => TestPorts.Reserve()).ToList();

        Assert.Equal(ports.Count, ports.Distinct().Count());
        Assert.All(ports, p => Assert.True(p < low || p > high, $"{p} is in the ephemeral range {low}-{high}"));
        using var listener = new TcpListener(IPAddress.Loopback, ports[^1]);
        listener.Start();
    }

    [Fact]
    public void A_port_locked_by_another_holder_is_not_handed_out()
    {
        var port = TestPorts.Reserve();
        var path = Path.Combine(Path.GetTempPath(), "runner-test-ports", port.ToString(CultureInfo.InvariantCulture));

        // The lock is what another test process would meet: opening the port's file exclusively fails while it is held.
        Assert.Throws<IOException>(() => new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None).Dispose());
    }
}
