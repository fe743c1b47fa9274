using System.Runtime.CompilerServices;

namespace R1Sharp.Tests;

/// <summary>The test host is a program like the CLI: it opts into the process-wide runtime settings before libtorch
/// loads (NativeRuntime; the library never applies them itself).</summary>
static class TestRuntime
{
#pragma warning disable CA2255 // a test assembly's initializer: it must run before any test touches TorchSharp
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Configure() => NativeRuntime.Configure();
}
