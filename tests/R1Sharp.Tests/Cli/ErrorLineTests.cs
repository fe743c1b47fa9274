using R1Sharp.Cli;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Cli;

/// <summary>Whatever a check misses, the CLI never prints a native backtrace as its error: libtorch's message is its
/// first line.</summary>
public class ErrorLineTests
{
    [Fact]
    public void ALibtorchErrorIsItsFirstLine()
    {
        var e = Assert.ThrowsAny<Exception>(() => { using var t = ones([2, 3]).view(7); });
        Assert.Contains("\n", e.Message.Trim()); // libtorch's message: the error, then its C++ frames
        string line = CliCommon.ErrorLine(e);
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain("frame #", line);
        Assert.Contains("shape '[7]' is invalid for input of size 6", line);
    }

    [Fact]
    public void AOneLineMessageIsLeftAsItIs() =>
        Assert.Equal("disk full", CliCommon.ErrorLine(new IOException("disk full")));
}
