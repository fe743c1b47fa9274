namespace R1Sharp;

/// <summary>
/// An error the user can act on: bad input files, malformed configuration, unsupported constructs.
/// The message names the file (and line, tensor or construct) and says what was expected and what was found.
/// The CLI prints only the message (no stack trace unless --verbose) and exits non-zero.
/// </summary>
public class R1SharpException : Exception
{
    public R1SharpException(string message) : base(message) { }
    public R1SharpException(string message, Exception inner) : base(message, inner) { }
}
