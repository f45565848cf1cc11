using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Runner.Storage.Native;

/// <summary>
/// Makes LightningDB load the LMDB we compile at build time (librunner-lmdb.so, see
/// NativeLmdb.targets) instead of the package's prebuilt binary, which needs a newer glibc.
/// Falls back to the default search when our library is not beside the app.
/// </summary>
internal static class NativeLmdbResolver
{
    public const string LibraryFileName = "librunner-lmdb.so";

    private static int s_registered;

#pragma warning disable CA2255 // The resolver must be in place before the first LightningDB call, from any entry point.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register()
    {
        if (!OperatingSystem.IsLinux() || Interlocked.Exchange(ref s_registered, 1) == 1)
        {
            return;
        }
        NativeLibrary.SetDllImportResolver(typeof(LightningDB.LightningEnvironment).Assembly, Resolve);
    }

    /// <summary>Where this assembly was loaded from, when a host loads it from elsewhere than its own directory; none in a native executable.</summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("SingleFile", "IL3000",
        Justification = "Empty in a native executable, where the library sits beside the executable (AppContext.BaseDirectory), which is tried first.")]
    private static string? AssemblyDirectory() => Path.GetDirectoryName(typeof(NativeLmdbResolver).Assembly.Location);

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName is not ("lmdb" or "liblmdb"))
        {
            return IntPtr.Zero;
        }
        foreach (var directory in new[] { AppContext.BaseDirectory, AssemblyDirectory() })
        {
            if (string.IsNullOrEmpty(directory))
            {
                continue;
            }
            var candidate = Path.Combine(directory, LibraryFileName);
            if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out var handle))
            {
                return handle;
            }
        }
        return IntPtr.Zero;
    }
}
