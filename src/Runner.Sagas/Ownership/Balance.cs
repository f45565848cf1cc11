namespace Runner.Sagas.Ownership;

/// <summary>
/// How many partitions a replica should hold: each targets ceil(P / live replicas). One that holds
/// more gives the surplus away; one at the target also gives one away while another replica is
/// below floor(P / live), so the counts end within one of each other (16 over 3: 6, 5, 5).
/// </summary>
internal static class Balance
{
    public static int Target(int partitions, int live) => live <= 0 ? partitions : (partitions + live - 1) / live;

    /// <summary>How many of its partitions a replica holding <paramref name="mine"/> should hand over now.</summary>
    /// <param name="others">Partition counts of the other live replicas (leaving ones excluded).</param>
    public static int ToRelease(int partitions, int mine, IReadOnlyCollection<int> others)
    {
        var live = others.Count + 1;
        var target = Target(partitions, live);
        if (mine > target)
        {
            return mine - target;
        }
        var floor = partitions / live;
        return mine == target && target > floor && others.Any(c => c < floor) ? 1 : 0;
    }

    /// <summary>How many free partitions a replica holding <paramref name="mine"/> may take now.</summary>
    public static int ToAcquire(int partitions, int mine, int live) => Math.Max(0, Target(partitions, live) - mine);

    /// <summary>
    /// Whether a replica should take a partition that another replica has just released: a replica
    /// below floor(P / live) at once, the others only once it has stayed free for a while, so a
    /// hand-over meant for a hungry replica is not taken by its neighbour.
    /// </summary>
    public static bool Hungry(int partitions, int mine, int live) => mine < partitions / Math.Max(1, live);
}
