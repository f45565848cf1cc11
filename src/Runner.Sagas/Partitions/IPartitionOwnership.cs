using Runner.Core.Ids;

namespace Runner.Sagas.Partitions;

/// <summary>
/// Which inbox partitions this replica runs. The seam for scale-out: a lease-based implementation
/// (NATS KV compare-and-set) will acquire and release partitions; until then one replica owns all.
/// </summary>
internal interface IPartitionOwnership
{
    /// <summary>Partitions to run now; each yielded token is cancelled when ownership is lost.</summary>
    IAsyncEnumerable<(PartitionId Partition, CancellationToken Owned)> AcquireAsync(CancellationToken cancellationToken);
}

/// <summary>This replica owns every partition for as long as it runs.</summary>
internal sealed class AllPartitionsOwnership(int partitions) : IPartitionOwnership
{
    public async IAsyncEnumerable<(PartitionId Partition, CancellationToken Owned)> AcquireAsync(
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask;
        for (var p = 0; p < partitions; p++)
        {
            yield return (new PartitionId(p), cancellationToken);
        }
    }
}
