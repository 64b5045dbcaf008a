"""The API reference pages: ReDoc and Swagger UI from the drf-spectacular sidecar's local files.

Nothing on these pages may come from the internet. The templates (templates/api/) drop
drf-spectacular's Google Fonts links and add a bar back to the console; and because ReDoc's bundle
itself fetches its logo from cdn.redoc.ly (unconditionally, in its side menu), each page is also
sent with a Content-Security-Policy that lets the browser load from this server only: whatever a
future bundle asks for elsewhere is refused by the browser, not fetched.
"""

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

# Inline script: the pages' own start-up code; blob: workers and inline styles: what ReDoc and
# Swagger UI use; data: images and fonts: their inlined icons.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class _LocalOnly:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return response


class ApiRedocView(_LocalOnly, SpectacularRedocView):
    template_name = "api/redoc.html"


class ApiSwaggerView(_LocalOnly, SpectacularSwaggerView):
    template_name = "api/swagger_ui.html"
