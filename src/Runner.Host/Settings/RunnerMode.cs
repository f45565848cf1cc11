namespace Runner.Host.Settings;

/// <summary>Which parts of Runner this process runs.</summary>
internal enum RunnerMode
{
    Saga,
    Effect,
    Combined,
}
