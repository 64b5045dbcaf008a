"""Where security-relevant events are reported: the audit log (audit.services) and the security logger."""

import logging

from audit.services import audit_record

logger = logging.getLogger("console.security")


def permission_refused(request, organization, permission):
    logger.warning(
        "permission refused: user=%s org=%s permission=%s path=%s",
        request.user.pk,
        organization.pk,
        permission,
        request.path,
    )
    audit_record(
        "permission.refused",
        request=request,
        organization=organization,
        details={"permission": permission, "path": request.path[:300], "method": request.method},
    )
