namespace Runner.Core.Ids;

/// <summary>A tenant: the first token after the stream prefix in every platform subject.</summary>
internal readonly record struct TenantId(string Value)
{
    public override string ToString() => Value;
}

/// <summary>A saga's name as declared in its manifest.</summary>
internal readonly record struct SagaName(string Value)
{
    public override string ToString() => Value;
}

/// <summary>The value that picks one saga instance out of all instances of a saga.</summary>
internal readonly record struct CorrelationKey(string Value)
{
    public override string ToString() => Value;
}

/// <summary>A command's identity; the same command always has the same id, on any replica.</summary>
internal readonly record struct CommandId(string Value)
{
    public override string ToString() => Value;
}

/// <summary>An inbox partition number in [0, partition count).</summary>
internal readonly record struct PartitionId(int Value)
{
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Identifies one saga instance.</summary>
internal readonly record struct InstanceId(TenantId Tenant, SagaName Saga, CorrelationKey Key)
{
    public override string ToString() => $"{Tenant}/{Saga}/{Key}";
}
