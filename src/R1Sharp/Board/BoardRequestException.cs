namespace R1Sharp.Board;

/// <summary>A request the board cannot answer as asked (unknown run, bad filter): HTTP 400 or 404 with this message.</summary>
public sealed class BoardRequestException(string message, int status = 400) : Exception(message)
{
    public int Status { get; } = status;
}
