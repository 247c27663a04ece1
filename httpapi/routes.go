package httpapi

import (
	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/fsm"
)

const (
	contentTypeSh = "text/x-shellscript; charset=utf-8"
	contentTypePS = "text/plain; charset=utf-8"
)

// buildRoutes returns the route table. The first route whose pattern
// matches wins, so literal routes come before parameter routes that could
// match the same path.
func (s *Server) buildRoutes() []*route {
	const (
		get, post, put, del = fasthttp.MethodGet, fasthttp.MethodPost, fasthttp.MethodPut, fasthttp.MethodDelete
		patch               = fasthttp.MethodPatch
		machine, reg, adm   = planeMachine, planeRegistration, planeAdmin
		vault               = "/v1/admin/vaults/{vaultId}"
		machines            = vault + "/machines/{machineId}"
		std, temp           = fsm.TokenKindStandard, fsm.TokenKindTemp
		enrollment          = fsm.TokenKindEnrollment
	)
	routes := []*route{
		// Machine plane: signed.
		newRoute(get, "/v1/secret/{secretId}", machine, s.signed(s.getSecret)),
		newRoute(get, "/v1/secrets", machine, s.signed(s.listSecrets)),
		newRoute(post, "/v1/secrets/list", machine, s.signed(s.listProjectSecrets)),
		newRoute(post, "/v1/secrets/export", machine, s.signed(s.exportSecrets)),
		newRoute(post, "/v1/secrets/poll", machine, s.signed(s.pollSecrets)),
		newRoute(post, "/v1/verify-access", machine, s.signed(s.verifyAccess)),
		newRoute(get, "/v1/cli/projects", machine, s.signed(s.cliProjects)),
		newRoute(get, "/v1/cli/secrets", machine, s.signed(s.cliSecrets)),

		// Registration: unsigned, authenticated by a single-use token.
		newRoute(get, "/v1/bootstrap/{token}", reg, s.bootstrapScript(std, shScript, contentTypeSh)),
		newRoute(get, "/v1/bootstrap/{token}/ps", reg, s.bootstrapScript(std, psScript, contentTypePS)),
		newRoute(post, "/v1/bootstrap/{token}/register", reg, s.register(std)),
		newRoute(get, "/v1/{vaultId}/temp-bootstrap/{token}", reg, s.bootstrapScript(temp, shScript, contentTypeSh)),
		newRoute(get, "/v1/{vaultId}/temp-bootstrap/{token}/ps", reg, s.bootstrapScript(temp, psScript, contentTypePS)),
		newRoute(post, "/v1/{vaultId}/temp-bootstrap/{token}/register", reg, s.register(temp)),
		newRoute(post, "/v1/{vaultId}/enroll/register", reg, s.enroll),

		// System.
		newRoute(post, "/v1/sys/init", adm, s.initCluster),
		newRoute(get, "/v1/sys/health", adm, s.health),
		newRoute(get, "/v1/sys/cluster", adm, s.admin(permRead, s.clusterStatus)),
		newRoute(get, "/v1/sys/checksum", adm, s.admin(permRead, s.stateChecksum)),
		newRoute(get, "/metrics", adm, s.serveMetrics),

		// Admin plane.
		newRoute(get, "/v1/admin/tokens", adm, s.admin(permTokens, s.listAdminTokens)),
		newRoute(post, "/v1/admin/tokens", adm, s.admin(permTokens, s.createAdminToken)),
		newRoute(del, "/v1/admin/tokens/{tokenId}", adm, s.admin(permTokens, s.revokeAdminToken)),
		newRoute(get, "/v1/admin/vaults", adm, s.admin(permRead, s.listVaults)),
		newRoute(post, "/v1/admin/vaults", adm, s.admin(permWrite, s.createVault)),
		newRoute(get, vault, adm, s.admin(permRead, s.getVault)),
		newRoute(put, vault+"/ip-allowlist", adm, s.admin(permWrite, s.setVaultAllowlist)),

		newRoute(get, vault+"/projects", adm, s.admin(permRead, s.listProjects)),
		newRoute(post, vault+"/projects", adm, s.admin(permWrite, s.createProject)),
		newRoute(get, vault+"/projects/{projectId}", adm, s.admin(permRead, s.getProject)),
		newRoute(get, vault+"/projects/{projectId}/secrets", adm, s.admin(permRead, s.listProjectSecretsAdmin)),
		newRoute(post, vault+"/projects/{projectId}/secrets", adm, s.admin(permWrite, s.createSecret)),
		newRoute(get, vault+"/secrets/{secretId}", adm, s.admin(permRead, s.getSecretAdmin)),
		newRoute(put, vault+"/secrets/{secretId}", adm, s.admin(permWrite, s.updateSecret)),
		newRoute(del, vault+"/secrets/{secretId}", adm, s.admin(permWrite, s.deleteSecret)),
		newRoute(get, vault+"/secrets/{secretId}/versions", adm, s.admin(permRead, s.listSecretVersions)),
		newRoute(post, vault+"/secrets/{secretId}/rollback", adm, s.admin(permWrite, s.rollbackSecret)),

		newRoute(get, vault+"/bootstrap-tokens", adm, s.admin(permRead, s.listBootstrapTokens(std))),
		newRoute(post, vault+"/bootstrap-tokens", adm, s.admin(permWrite, s.createBootstrapToken)),
		newRoute(del, vault+"/bootstrap-tokens/{tokenId}", adm,
			s.admin(permWrite, s.revokeBootstrapToken(std, ActionBootstrapTokenRevoke))),
		newRoute(get, vault+"/temp-tokens", adm, s.admin(permRead, s.listBootstrapTokens(temp))),
		newRoute(post, vault+"/temp-tokens", adm, s.admin(permWrite, s.createTempToken)),
		newRoute(del, vault+"/temp-tokens/{tokenId}", adm,
			s.admin(permWrite, s.revokeBootstrapToken(temp, ActionTempTokenRevoke))),
		newRoute(get, vault+"/enrollment-tokens", adm, s.admin(permRead, s.listBootstrapTokens(enrollment))),
		newRoute(post, vault+"/enrollment-tokens", adm, s.admin(permWrite, s.createEnrollmentToken)),
		newRoute(del, vault+"/enrollment-tokens/{tokenId}", adm,
			s.admin(permWrite, s.revokeBootstrapToken(enrollment, ActionEnrollmentTokenRevoke))),

		newRoute(get, vault+"/machines", adm, s.admin(permRead, s.listMachines)),
		newRoute(get, machines, adm, s.admin(permRead, s.getMachine)),
		newRoute(del, machines, adm, s.admin(permWrite, s.purgeMachine)),
		newRoute(post, machines+"/approve", adm, s.admin(permWrite, s.machineAction(fsm.ActionApprove))),
		newRoute(post, machines+"/deny", adm, s.admin(permWrite, s.machineAction(fsm.ActionDeny))),
		newRoute(post, machines+"/revoke", adm, s.admin(permWrite, s.machineAction(fsm.ActionRevoke))),
		newRoute(post, machines+"/disable", adm, s.admin(permWrite, s.machineAction(fsm.ActionDisable))),
		newRoute(post, machines+"/enable", adm, s.admin(permWrite, s.machineAction(fsm.ActionEnable))),
		newRoute(post, machines+"/rename", adm, s.admin(permWrite, s.renameMachine)),
		newRoute(post, machines+"/projects", adm, s.admin(permWrite, s.attachProject)),
		newRoute(del, machines+"/projects/{projectId}", adm, s.admin(permWrite, s.detachProject)),
		newRoute(get, machines+"/grants", adm, s.admin(permRead, s.getGrants)),
		newRoute(put, machines+"/grants", adm, s.admin(permWrite, s.setGrants)),
		newRoute(post, machines+"/extend", adm, s.admin(permWrite, s.extendMachine)),
		newRoute(post, machines+"/revert", adm, s.admin(permWrite, s.revertExtension)),
		newRoute(get, machines+"/extensions", adm, s.admin(permRead, s.listExtensions)),
		newRoute(get, machines+"/guardrails", adm, s.admin(permRead, s.getGuardrails)),
		newRoute(put, machines+"/guardrails", adm, s.admin(permWrite, s.setGuardrails)),

		// Audit and alerts.
		newRoute(get, "/v1/admin/audit", adm, s.admin(permRead, s.querySystemAudit)),
		newRoute(get, vault+"/audit", adm, s.admin(permRead, s.queryAudit)),
		newRoute(get, vault+"/audit/export", adm, s.admin(permRead, s.exportAudit)),
		newRoute(get, vault+"/audit/stream", adm, s.admin(permRead, s.streamAudit)),
		newRoute(put, vault+"/audit/retention", adm, s.admin(permAlerts, s.setAuditRetention)),
		newRoute(get, vault+"/alerts", adm, s.admin(permRead, s.getAlerts)),
		newRoute(put, vault+"/alerts/email", adm, s.admin(permAlerts, s.setEmailAlerts)),
		newRoute(put, vault+"/alerts/expiry-warnings", adm, s.admin(permAlerts, s.setExpiryWarnings)),
		newRoute(get, vault+"/webhooks", adm, s.admin(permRead, s.listWebhooks)),
		newRoute(post, vault+"/webhooks", adm, s.admin(permAlerts, s.createWebhook)),
		newRoute(get, vault+"/webhooks/{webhookId}", adm, s.admin(permRead, s.getWebhook)),
		newRoute(patch, vault+"/webhooks/{webhookId}", adm, s.admin(permAlerts, s.updateWebhook)),
		newRoute(del, vault+"/webhooks/{webhookId}", adm, s.admin(permAlerts, s.deleteWebhook)),
		newRoute(post, vault+"/webhooks/{webhookId}/test", adm, s.admin(permAlerts, s.testWebhook)),
		newRoute(get, vault+"/webhooks/{webhookId}/deliveries", adm, s.admin(permRead, s.listDeliveries)),
	}
	routes = append(routes, s.clusterRoutes()...)
	return s.requireAdminClientCert(routes)
}
