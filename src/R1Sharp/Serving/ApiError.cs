using System.Text.Json.Nodes;

namespace R1Sharp.Serving;

/// <summary>
/// A request the server refuses, with what OpenAI's API puts in its error object: HTTP status, message, type
/// ("invalid_request_error", "authentication_error", ...), the offending parameter and a machine-readable code.
/// Thrown anywhere below a route and turned into {"error": {...}} by the route wrapper, so bad input never becomes a 500.
/// </summary>
public sealed class ApiError : Exception
{
    public int Status { get; }
    public string Type { get; }
    public string? Param { get; }
    public string? Code { get; }

    public ApiError(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
        : base(message)
    {
        Status = status; Type = type; Param = param; Code = code;
    }

    public static ApiError BadRequest(string message, string? param = null, string? code = null) => new(400, message, param: param, code: code);

    public JsonObject ToJson() => Body(Message, Type, Param, Code);

    public static JsonObject Body(string message, string type, string? param, string? code) => new()
    {
        ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code },
    };
}
